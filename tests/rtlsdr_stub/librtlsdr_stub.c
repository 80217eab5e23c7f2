/* A file-backed stand-in for librtlsdr, for testing through pyrtlsdr's real API.
 *
 * It exports every function pyrtlsdr 0.5 binds when it loads the library, with
 * librtlsdr's signatures and return conventions, and plays a cu8 file through
 * rtlsdr_read_async / rtlsdr_read_sync instead of USB.  One R820T tuner (code 5, the
 * 29 gain steps librtlsdr reports for it).  Written for wmbus-sdr's tests; no code of
 * librtlsdr is used, only its documented interface (rtl-sdr.h).
 *
 * Test controls (extra exported functions, all take effect at the next call):
 *   stub_set_input(path)           cu8 file played by each read_async (from its start)
 *   stub_set_log(path)             one line per state-changing call (see note())
 *   stub_set_devices(n, serials)   n dongles; serials "A,B,..." (default 00000001)
 *   stub_set_open_error(code)      rtlsdr_open fails with code (0: opens)
 *   stub_set_end(code, bytes)      read_async stops after `bytes` (-1: file end) and
 *                                  returns `code` (a lost dongle: -4 LIBUSB_ERROR_NO_DEVICE)
 *   stub_set_pace(us)              sleep `us` microseconds after each buffer
 *   stub_set_unplug_after(n)       after n read_async runs the dongles vanish (count 0)
 *   stub_reset()                   all of the above to the defaults
 * Build: cc -shared -fPIC -o librtlsdr.so librtlsdr_stub.c
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void (*read_async_cb_t)(unsigned char *buf, uint32_t len, void *ctx);

struct rtlsdr_dev {
    uint32_t index;
    uint32_t rate;
    uint32_t freq;
    int ppm;
    int gain;
    int manual;
    int cancel;
    int running;
};
typedef struct rtlsdr_dev rtlsdr_dev_t;

static const int kGains[] = {0,   9,   14,  27,  37,  77,  87,  125, 144, 157,
                             166, 197, 207, 229, 254, 280, 297, 328, 338, 364,
                             372, 386, 402, 421, 434, 439, 445, 480, 496};
static const int kGainCount = (int)(sizeof(kGains) / sizeof(kGains[0]));

static char g_input[4096];
static char g_log[4096];
static char g_serials[16][64];
static uint32_t g_devices = 1;
static int g_open_error = 0;
static int g_end_code = -4;
static long long g_end_bytes = -1;
static unsigned g_pace_us = 0;
static int g_unplug_after = -1;
static int g_reads_ended = 0;

void stub_reset(void)
{
    g_input[0] = g_log[0] = '\0';
    g_devices = 1;
    strcpy(g_serials[0], "00000001");
    g_open_error = 0;
    g_end_code = -4;
    g_end_bytes = -1;
    g_pace_us = 0;
    g_unplug_after = -1;
    g_reads_ended = 0;
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

void stub_set_input(const char *path) { copy_text(g_input, sizeof g_input, path); }
void stub_set_log(const char *path) { copy_text(g_log, sizeof g_log, path); }
void stub_set_open_error(int code) { g_open_error = code; }
void stub_set_pace(unsigned us) { g_pace_us = us; }
void stub_set_unplug_after(int n_reads) { g_unplug_after = n_reads; }

void stub_set_end(int code, long long n_bytes)
{
    g_end_code = code;
    g_end_bytes = n_bytes;
}

void stub_set_devices(uint32_t n, const char *serials)
{
    char list[1024];
    copy_text(list, sizeof list, serials);
    g_devices = n > 16 ? 16 : n;
    char *save = NULL;
    char *item = strtok_r(list, ",", &save);
    for (uint32_t i = 0; i < g_devices; i++) {
        copy_text(g_serials[i], sizeof g_serials[i], item ? item : "00000001");
        if (item) item = strtok_r(NULL, ",", &save);
    }
}

static void note(const char *fmt, long long a, long long b)
{
    if (!g_log[0]) return;
    FILE *f = fopen(g_log, "a");
    if (!f) return;
    fprintf(f, fmt, a, b);
    fputc('\n', f);
    fclose(f);
}

/* --- devices ------------------------------------------------------------------- */

uint32_t rtlsdr_get_device_count(void) { return g_devices; }

const char *rtlsdr_get_device_name(uint32_t index)
{
    return index < g_devices ? "Generic RTL2832U OEM (file stub)" : "";
}

int rtlsdr_get_device_usb_strings(uint32_t index, char *manufact, char *product,
                                  char *serial)
{
    if (index >= g_devices) return -1;
    if (manufact) strcpy(manufact, "Realtek");
    if (product) strcpy(product, "RTL2838UHIDIR");
    if (serial) copy_text(serial, 256, g_serials[index]);
    return 0;
}

int rtlsdr_get_index_by_serial(const char *serial)
{
    if (!serial) return -1;
    if (g_devices == 0) return -2;
    for (uint32_t i = 0; i < g_devices; i++)
        if (strcmp(serial, g_serials[i]) == 0) return (int)i;
    return -3;
}

int rtlsdr_open(rtlsdr_dev_t **dev, uint32_t index)
{
    if (g_open_error) return g_open_error;
    if (index >= g_devices) return -1;
    rtlsdr_dev_t *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    d->index = index;
    d->rate = 2048000;
    *dev = d;
    note("open %lld", index, 0);
    return 0;
}

int rtlsdr_close(rtlsdr_dev_t *dev)
{
    if (!dev) return -1;
    note("close", 0, 0);
    free(dev);
    return 0;
}

/* --- configuration --------------------------------------------------------------- */

int rtlsdr_set_xtal_freq(rtlsdr_dev_t *dev, uint32_t rtl, uint32_t tuner)
{
    (void)rtl; (void)tuner;
    return dev ? 0 : -1;
}

int rtlsdr_get_xtal_freq(rtlsdr_dev_t *dev, uint32_t *rtl, uint32_t *tuner)
{
    if (!dev) return -1;
    if (rtl) *rtl = 28800000;
    if (tuner) *tuner = 28800000;
    return 0;
}

int rtlsdr_set_center_freq(rtlsdr_dev_t *dev, uint32_t freq)
{
    if (!dev) return -1;
    dev->freq = freq;
    note("freq %lld", freq, 0);
    return 0;
}

uint32_t rtlsdr_get_center_freq(rtlsdr_dev_t *dev) { return dev ? dev->freq : 0; }

int rtlsdr_set_freq_correction(rtlsdr_dev_t *dev, int ppm)
{
    if (!dev) return -1;
    if (dev->ppm == ppm) return -2; /* librtlsdr: nothing to change */
    dev->ppm = ppm;
    note("ppm %lld", ppm, 0);
    return 0;
}

int rtlsdr_get_freq_correction(rtlsdr_dev_t *dev) { return dev ? dev->ppm : 0; }

int rtlsdr_get_tuner_type(rtlsdr_dev_t *dev) { return dev ? 5 : 0; }

int rtlsdr_get_tuner_gains(rtlsdr_dev_t *dev, int *gains)
{
    if (!dev) return -1;
    if (gains) memcpy(gains, kGains, sizeof kGains);
    return kGainCount;
}

int rtlsdr_set_tuner_gain(rtlsdr_dev_t *dev, int gain)
{
    if (!dev) return -1;
    dev->gain = gain;
    note("gain %lld", gain, 0);
    return 0;
}

int rtlsdr_get_tuner_gain(rtlsdr_dev_t *dev) { return dev ? dev->gain : 0; }

int rtlsdr_set_tuner_bandwidth(rtlsdr_dev_t *dev, uint32_t bw)
{
    (void)bw;
    return dev ? 0 : -1;
}

int rtlsdr_set_tuner_if_gain(rtlsdr_dev_t *dev, int stage, int gain)
{
    (void)stage; (void)gain;
    return dev ? 0 : -1;
}

int rtlsdr_set_tuner_gain_mode(rtlsdr_dev_t *dev, int manual)
{
    if (!dev) return -1;
    dev->manual = manual;
    note("gain_mode %lld", manual, 0);
    return 0;
}

int rtlsdr_set_sample_rate(rtlsdr_dev_t *dev, uint32_t rate)
{
    if (!dev) return -1;
    /* The RTL2832U resampler's bands, as librtlsdr checks them. */
    if (rate <= 225000 || rate > 3200000 || (rate > 300000 && rate <= 900000))
        return -EINVAL;
    dev->rate = rate;
    note("rate %lld", rate, 0);
    return 0;
}

uint32_t rtlsdr_get_sample_rate(rtlsdr_dev_t *dev) { return dev ? dev->rate : 0; }

int rtlsdr_set_testmode(rtlsdr_dev_t *dev, int on)
{
    (void)on;
    return dev ? 0 : -1;
}

int rtlsdr_set_agc_mode(rtlsdr_dev_t *dev, int on)
{
    if (!dev) return -1;
    note("agc %lld", on, 0);
    return 0;
}

int rtlsdr_set_direct_sampling(rtlsdr_dev_t *dev, int on)
{
    (void)on;
    return dev ? 0 : -1;
}

int rtlsdr_get_direct_sampling(rtlsdr_dev_t *dev) { return dev ? 0 : -1; }

int rtlsdr_set_offset_tuning(rtlsdr_dev_t *dev, int on)
{
    (void)on;
    return dev ? 0 : -1;
}

int rtlsdr_set_dithering(rtlsdr_dev_t *dev, int on)
{
    (void)on;
    return dev ? 0 : -1;
}

int rtlsdr_set_bias_tee(rtlsdr_dev_t *dev, int on)
{
    if (!dev) return -1;
    note("bias_tee %lld", on, 0);
    return 0;
}

int rtlsdr_set_gpio_output(rtlsdr_dev_t *dev, uint8_t gpio) { (void)gpio; return dev ? 0 : -1; }
int rtlsdr_set_gpio_input(rtlsdr_dev_t *dev, uint8_t gpio) { (void)gpio; return dev ? 0 : -1; }
int rtlsdr_set_gpio_bit(rtlsdr_dev_t *dev, uint8_t gpio, int val)
{
    (void)gpio; (void)val;
    return dev ? 0 : -1;
}
int rtlsdr_get_gpio_bit(rtlsdr_dev_t *dev, uint8_t gpio, int *val)
{
    (void)gpio;
    if (val) *val = 0;
    return dev ? 0 : -1;
}
int rtlsdr_set_gpio_byte(rtlsdr_dev_t *dev, int val) { (void)val; return dev ? 0 : -1; }
int rtlsdr_get_gpio_byte(rtlsdr_dev_t *dev, int *val)
{
    if (val) *val = 0;
    return dev ? 0 : -1;
}
int rtlsdr_set_gpio_status(rtlsdr_dev_t *dev, int *status)
{
    if (status) *status = 0;
    return dev ? 0 : -1;
}

/* --- streaming ------------------------------------------------------------------- */

int rtlsdr_reset_buffer(rtlsdr_dev_t *dev) { return dev ? 0 : -1; }

int rtlsdr_read_sync(rtlsdr_dev_t *dev, void *buf, int len, int *n_read)
{
    if (!dev || !buf || len < 0) return -1;
    memset(buf, 127, (size_t)len);
    if (n_read) *n_read = len;
    return 0;
}

int rtlsdr_read_async(rtlsdr_dev_t *dev, read_async_cb_t cb, void *ctx,
                      uint32_t buf_num, uint32_t buf_len)
{
    if (!dev || !cb) return -1;
    if (buf_len == 0) buf_len = 16 * 32 * 512;
    FILE *f = fopen(g_input, "rb");
    if (!f) return -1;
    unsigned char *buf = malloc(buf_len);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    note("read_async %lld %lld", buf_num, buf_len);
    __atomic_store_n(&dev->cancel, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&dev->running, 1, __ATOMIC_SEQ_CST);
    long long sent = 0;
    while (!__atomic_load_n(&dev->cancel, __ATOMIC_SEQ_CST)) {
        size_t want = buf_len;
        if (g_end_bytes >= 0 && sent + (long long)want > g_end_bytes)
            want = (size_t)(g_end_bytes - sent);
        size_t got = want ? fread(buf, 1, want, f) : 0;
        if (got == 0) break;
        cb(buf, (uint32_t)got, ctx);
        sent += (long long)got;
        if (g_pace_us) usleep(g_pace_us);
    }
    __atomic_store_n(&dev->running, 0, __ATOMIC_SEQ_CST);
    free(buf);
    fclose(f);
    int cancelled = __atomic_load_n(&dev->cancel, __ATOMIC_SEQ_CST);
    note(cancelled ? "cancelled %lld" : "ended %lld", sent, 0);
    if (++g_reads_ended == g_unplug_after) g_devices = 0;
    return cancelled ? 0 : g_end_code;
}

int rtlsdr_wait_async(rtlsdr_dev_t *dev, read_async_cb_t cb, void *ctx)
{
    return rtlsdr_read_async(dev, cb, ctx, 0, 0);
}

int rtlsdr_cancel_async(rtlsdr_dev_t *dev)
{
    if (!dev) return -1;
    if (!__atomic_load_n(&dev->running, __ATOMIC_SEQ_CST)) return -2;
    __atomic_store_n(&dev->cancel, 1, __ATOMIC_SEQ_CST);
    return 0;
}

__attribute__((constructor)) static void stub_init(void) { stub_reset(); }
