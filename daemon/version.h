/*
 * version.h: the version labsyncd and labsyncctl print (-V, --version).
 * A build may set it with -DLABSYNC_VERSION='"..."'.
 */
#ifndef LABSYNC_VERSION_H
#define LABSYNC_VERSION_H

#ifndef LABSYNC_VERSION
#define LABSYNC_VERSION "0.1"
#endif

#endif
