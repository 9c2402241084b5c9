/* term_text: see term_text.h. */
#include "ctl/term_text.h"

void term_text_put(buf_t *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch == 0x7f)
            buf_printf(b, "\\x%02x", ch);
        else
            buf_putc(b, (char)ch);
    }
}
