/*
 * setup.h: labsyncctl setup, which makes a node's keypair and config.
 */
#ifndef LABSYNC_SETUP_H
#define LABSYNC_SETUP_H

/* argv[0] is "setup"; returns the exit status (0, 1 refused, 2 usage). */
int	setup_main(int argc, char **argv);

#endif
