/* debug_page: see debug_page.h. The page is worker/http/debug_page.html, made a C string at build
 * time (debug_page.inc, see the Makefile). */
#include "worker/http/debug_page.h"

static const char page[] =
#include "debug_page.inc"
    ;

const char *debug_page_html(size_t *len)
{
    *len = sizeof(page) - 1;
    return page;
}
