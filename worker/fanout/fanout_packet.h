/*
 * fanout_packet: what a broadcast carries to the local sockets, built once per broadcast and
 * shared by every recipient: the bytes (an eio_msg, which holds each transport's form — the
 * WebSocket frames, the polling records — next to them) and, beside the bytes, what the layers
 * on the way need to know without reading them back: the kind, the room, the stream entry id
 * (connection state recovery), and where the Socket.IO data starts (what the cluster adapter
 * publishes). No I/O; the packet owns one reference to its message.
 */
#ifndef STREAMIO_WORKER_FANOUT_FANOUT_PACKET_H
#define STREAMIO_WORKER_FANOUT_FANOUT_PACKET_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/proto/payload.h"
#include "common/proto/stream_id.h"
#include "worker/eio/eio_msg.h"

typedef enum fanout_kind {
    FANOUT_ENTRY,   /* a stream entry: `42["room:message",<payload>(,"<id>")]` for its room */
    FANOUT_CLUSTER, /* a broadcast another server (or the emitter) published */
} fanout_kind_t;

typedef struct fanout_packet {
    fanout_kind_t kind;
    eio_msg_t *msg;   /* the bytes, in every transport's form (one reference) */
    const char *room; /* ENTRY: its stream (borrowed from the builder's caller); else NULL */
    size_t room_len;
    const char *id; /* ENTRY: the entry id text (borrowed likewise); else NULL */
    size_t id_len;
    bool has_id; /* entry_id holds the entry's id (recovery offsets) */
    stream_id_t entry_id;
    bool reread;     /* ENTRY: read again from a pending list, or claimed (see fanout_publish) */
    size_t data_off; /* ENTRY: where the Socket.IO data (JSON array) starts in the text */
} fanout_packet_t;

/*
 * A stream entry's packet (payload_packet; with `offset` the id is its last argument) for room
 * stream: built in scratch (the caller's), then copied into the packet's message. Unless mpack is
 * NULL, the msgpack of its data for a classic adapter is appended to mpack in the same pass
 * (payload_packet_pair). room and id are borrowed for the packet's lifetime.
 */
void fanout_packet_entry(fanout_packet_t *pk, buf_t *scratch, buf_t *mpack, const char *stream,
                         size_t stream_len, const char *id, size_t id_len,
                         const payload_field_t *fields, size_t nfields, bool offset);
/* An entry's packet from its text (a sibling worker built it): room, id borrowed as above. */
void fanout_packet_entry_text(fanout_packet_t *pk, const char *stream, size_t stream_len,
                              const char *id, size_t id_len, const char *text, size_t len);
/*
 * A cluster broadcast: text (a complete Engine.IO packet) and natt attachments (u32 length +
 * bytes each), copied. A room:message that carries an offset (entries of other streamio servers)
 * gets its entry id, read once here where the bytes come in.
 */
void fanout_packet_cluster(fanout_packet_t *pk, const char *text, size_t len, const void *atts,
                           size_t atts_len, unsigned natt);
/* The Socket.IO data of an ENTRY packet (the JSON array [event, ...args]), borrowed. */
const char *fanout_packet_data(const fanout_packet_t *pk, size_t *len);
/* Drops the packet's reference to its message (recipients keep theirs). */
void fanout_packet_release(fanout_packet_t *pk);

#endif
