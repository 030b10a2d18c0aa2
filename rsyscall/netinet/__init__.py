"""Header modules for <netinet/*.h>."""
