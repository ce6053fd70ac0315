/* ec_stream.h - streaming inference: the rows a layer keeps of its input between NAME_step calls. */
#ifndef EC_STREAM_H
#define EC_STREAM_H

#include <stdint.h>

/*
 * A layer's history: `channels` planes of `rows` rows of `row_bytes` bytes each (the (C, rows, W)
 * layout of the layer's input, time along the rows).  Drops the oldest row of every plane,
 * moves the others up by one and copies the new row (channels x row_bytes bytes, (C, 1, W) order)
 * in as the last.  `row` must not lie inside `history`.
 */
void ec_stream_push(int8_t *history, int channels, int rows, int row_bytes, const int8_t *row);

#endif /* EC_STREAM_H */
