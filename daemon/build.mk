# Daemon sources: everything in daemon/ except the two program entry points
# goes into libpostern.a, which the programs and the unit tests link.
LIB_SRCS := $(filter-out daemon/main.c daemon/posternctl.c,$(wildcard daemon/*.c))
