/* A stand-in model: 64 bytes in, 64 bytes out (out = in ^ 0x5A). */
#ifndef SMOKE_MODEL_H
#define SMOKE_MODEL_H

#define SMOKE_SAMPLE_BYTES 64

void smoke_model(const unsigned char *in, unsigned char *out);

#endif
