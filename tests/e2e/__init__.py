"""End-to-end tests of the threaded association layer over loopback sockets."""
