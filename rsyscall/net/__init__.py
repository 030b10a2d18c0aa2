"""Header modules for <net/*.h>."""
