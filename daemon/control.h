/* The control socket (control.c): one JSON request per line, one JSON answer per line. */
#ifndef CUSTOSD_CONTROL_H
#define CUSTOSD_CONTROL_H

#include "daemon.h"

/* Opens and listens on the socket; 0 or a libuv error (logged). */
int control_start(struct daemon *d);
/* Every tick: accepts a connection left waiting for memory. */
void control_tick(struct daemon *d);

#endif
