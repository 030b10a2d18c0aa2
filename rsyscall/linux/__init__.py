"""Header modules for <linux/*.h>."""
