/*
 * decimal.h - three decimal digits without printf (fault and exit messages).
 */
#ifndef EC_DECIMAL_H
#define EC_DECIMAL_H

/* Writes value % 1000 as three digits into last[-2..0]. */
static inline void ec_decimal3(char *last, unsigned value)
{
    int i;

    for (i = 0; i < 3; ++i) {
        last[-i] = (char)('0' + value % 10u);
        value /= 10u;
    }
}

#endif /* EC_DECIMAL_H */
