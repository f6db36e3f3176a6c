/*
 * uuid.c: UUIDv7: 48 bits of Unix milliseconds, then random bits, so new
 * ids sort by creation time and land at the end of SQLite's b-trees.
 */
#include <stdint.h>
#include <stdio.h>

#include <sodium.h>

#include "clock.h"
#include "uuid.h"

void
uuid_v7(char out[UUID_STRLEN + 1])
{
	uint8_t		 b[16];
	uint64_t	 ms = clock_system_ms();

	randombytes_buf(b, sizeof(b));
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (40 - 8 * i));
	b[6] = 0x70 | (b[6] & 0x0f);	/* version 7 */
	b[8] = 0x80 | (b[8] & 0x3f);	/* variant 10 */
	snprintf(out, UUID_STRLEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
	    b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}
