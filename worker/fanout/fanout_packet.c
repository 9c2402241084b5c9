/* fanout_packet: see fanout_packet.h. */
#include "worker/fanout/fanout_packet.h"

void fanout_packet_entry_text(fanout_packet_t *pk, const char *stream, size_t stream_len,
                              const char *id, size_t id_len, const char *text, size_t len)
{
    *pk = (fanout_packet_t){
        .kind = FANOUT_ENTRY,
        .msg = eio_msg_new(text, len, NULL, 0, 0),
        .room = stream,
        .room_len = stream_len,
        .id = id,
        .id_len = id_len,
        .data_off = PAYLOAD_PACKET_DATA_OFFSET,
    };
    pk->has_id = id_len && stream_id_parse(id, id_len, &pk->entry_id);
}

void fanout_packet_entry(fanout_packet_t *pk, buf_t *scratch, buf_t *mpack, const char *stream,
                         size_t stream_len, const char *id, size_t id_len,
                         const payload_field_t *fields, size_t nfields, bool offset)
{
    buf_reset(scratch);
    payload_packet_pair(scratch, mpack, stream, stream_len, id, id_len, fields, nfields, offset);
    fanout_packet_entry_text(pk, stream, stream_len, id, id_len, scratch->data, scratch->len);
}

void fanout_packet_cluster(fanout_packet_t *pk, const char *text, size_t len, const void *atts,
                           size_t atts_len, unsigned natt)
{
    *pk = (fanout_packet_t){
        .kind = FANOUT_CLUSTER,
        .msg = eio_msg_new(text, len, atts, atts_len, natt),
    };
    const char *id;
    size_t id_len;
    pk->has_id = payload_packet_offset(text, len, &id, &id_len) &&
                 stream_id_parse(id, id_len, &pk->entry_id);
}

const char *fanout_packet_data(const fanout_packet_t *pk, size_t *len)
{
    size_t n;
    const char *text = eio_msg_text(pk->msg, &n);
    *len = n - pk->data_off;
    return text + pk->data_off;
}

void fanout_packet_release(fanout_packet_t *pk)
{
    eio_msg_unref(pk->msg);
    pk->msg = NULL;
}
