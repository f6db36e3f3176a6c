/*
 * uuid.h: time-ordered UUIDv7 ids (RFC 9562) for rows labsync creates.
 */
#ifndef LABSYNC_UUID_H
#define LABSYNC_UUID_H

#define UUID_STRLEN	36

void	uuid_v7(char out[UUID_STRLEN + 1]);

#endif
