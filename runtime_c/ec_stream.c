/* ec_stream.c - see ec_stream.h. */
#include "ec_stream.h"

void ec_stream_push(int8_t *history, int channels, int rows, int row_bytes, const int8_t *row)
{
    int c, i;
    const int keep = (rows - 1) * row_bytes;
    for (c = 0; c < channels; ++c) {
        int8_t *plane = history + (long)c * rows * row_bytes;
        const int8_t *src = row + (long)c * row_bytes;
        for (i = 0; i < keep; ++i) {
            plane[i] = plane[i + row_bytes];
        }
        for (i = 0; i < row_bytes; ++i) {
            plane[keep + i] = src[i];
        }
    }
}
