#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "common/proto/http_gzip.h"

static void test_accepted(void **state)
{
    (void)state;
    assert_true(http_gzip_accepted("gzip"));
    assert_true(http_gzip_accepted("gzip, deflate, br"));
    assert_true(http_gzip_accepted("deflate, GZIP;q=0.5"));
    assert_true(http_gzip_accepted("*"));
    assert_false(http_gzip_accepted(NULL));
    assert_false(http_gzip_accepted(""));
    assert_false(http_gzip_accepted("deflate, br"));
    assert_false(http_gzip_accepted("gzip;q=0"));
    assert_false(http_gzip_accepted("gzip;q=0.000"));
    assert_false(http_gzip_accepted("gzipx"));
}

static void test_round_trip(void **state)
{
    (void)state;
    char in[4000];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)('a' + i % 7);
    buf_t out;
    buf_init(&out);
    assert_int_equal(http_gzip_compress(&out, in, sizeof(in)), 0);
    assert_true(out.len > 18 && out.len < sizeof(in));
    assert_int_equal((unsigned char)out.data[0], 0x1f);
    assert_int_equal((unsigned char)out.data[1], 0x8b);
    char back[5000];
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)out.data;
    z.avail_in = (uInt)out.len;
    z.next_out = (Bytef *)back;
    z.avail_out = sizeof(back);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, sizeof(in));
    assert_memory_equal(back, in, sizeof(in));
    inflateEnd(&z);
    assert_int_equal(http_gzip_compress(&out, "", 0), 0);
    assert_true(out.len >= 18);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
