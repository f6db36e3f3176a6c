/*
 * wire.h: the protocol's messages (proto/labsync.proto) in and out.
 */
#ifndef LABSYNC_WIRE_H
#define LABSYNC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/labsync.pb-c.h"
#include "reason.h"

#define WIRE_VERSION	1
#define WIRE_MAX_CHANGES 100000	/* changes in one batch, whatever the sender */
#define WIRE_MAX_KEPT	64	/* kept-aside entries in one heartbeat */

/* protobuf-c's structs take char * even for what they only read. */
#define UNCONST(p)	((void *)(uintptr_t)(const void *)(p))

/* Packed changes collected for one ChangeBatch. */
struct wire_batch {
	ProtobufCBinaryData	*changes;
	size_t			 n, cap;
	size_t			 bytes;
};

/*
 * An arena for decoding: protobuf-c allocates a dozen small blocks per
 * change, so decoded messages live in large chunks that are released
 * together (wire_arena_reset) instead of one free() each.
 */
struct wire_arena;
struct wire_arena *wire_arena_new(void);
void		 wire_arena_free(struct wire_arena *);
void		 wire_arena_reset(struct wire_arena *);

/*
 * Decode and check the envelope; NULL if it is refused, with the code
 * (REASON_MALFORMED, REASON_VERSION, REASON_NO_MEMORY) and why in words.
 * With an arena the envelope lives until the arena is reset; without
 * one, release it with wire_free.
 */
Labsync__Envelope *wire_unpack(const uint8_t *, size_t, struct wire_arena *,
		    enum reason *, char *why, size_t whylen);
void		 wire_free(Labsync__Envelope *);
/*
 * Like wire_unpack into an arena, but the changes of a batch or a
 * snapshot stay packed (its changes field is NULL; *raw, else NULL, holds
 * each change's bytes as received, so the log stores and relays them
 * without packing them again): decode each with wire_unpack_change when
 * it is used, so a large batch never sits in memory decoded all at once.
 */
Labsync__Envelope *wire_unpack_lazy(const uint8_t *, size_t, struct wire_arena *,
		    ProtobufCBinaryData **raw, enum reason *, char *why,
		    size_t whylen);
/* One packed change; NULL if it is not a protobuf Change. */
Labsync__Change	*wire_unpack_change(const ProtobufCBinaryData *,
		    struct wire_arena *);
/* Pack an envelope (version and sender filled in); malloc'd. */
uint8_t		*wire_pack(Labsync__Envelope *, const char *sender,
		    size_t *len);

void		 wire_batch_init(struct wire_batch *);
int		 wire_batch_add(struct wire_batch *, const uint8_t *, size_t);
uint8_t		*wire_batch_pack(struct wire_batch *, const char *sender,
		    int more, size_t *len);
/* A snapshot batch of b's changes; v (NULL but in the last): the
   server's vector as of the snapshot. */
uint8_t		*wire_snapshot_pack(struct wire_batch *, const char *sender,
		    const Labsync__Vector *v, int more, uint64_t total,
		    uint64_t from, uint64_t sent, size_t *len);
void		 wire_batch_clear(struct wire_batch *);	/* empties */
void		 wire_batch_free(struct wire_batch *);	/* and releases */

#endif
