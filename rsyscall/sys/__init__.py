"""Header modules for <sys/*.h>."""
