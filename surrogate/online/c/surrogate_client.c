/* See surrogate_client.h. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "surrogate_client.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

struct sc_client {
    void *ctx, *push, *req;
    char *simulation_id; /* JSON-escaped */
    char *parameters;    /* JSON object text */
    long last_step;      /* the highest step sent, -1 before the first */
};

static _Thread_local char last_error[512];

const char *sc_last_error(void) { return last_error; }

static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

/* A growable string. */
typedef struct { char *s; size_t len, cap; } buf;

static int put(buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return fail("formatting the header failed");
        if ((size_t)n < b->cap - b->len) { b->len += (size_t)n; return 0; }
        size_t cap = 2 * b->cap + (size_t)n + 64;
        char *s = realloc(b->s, cap);
        if (!s) return fail("out of memory");
        b->s = s;
        b->cap = cap;
    }
}

/* s as a JSON string literal (quotes, backslashes and control characters escaped). */
static int put_string(buf *b, const char *s) {
    if (put(b, "\"")) return -1;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int rc = (ch == '"' || ch == '\\') ? put(b, "\\%c", ch) : ch < 0x20 ? put(b, "\\u%04x", ch) : put(b, "%c", ch);
        if (rc) return -1;
    }
    return put(b, "\"");
}

static int put_number(buf *b, double x) {
    if (!isfinite(x)) return fail("non-finite number %g in the header", x);
    return put(b, "%.17g", x);
}

static size_t dtype_size(const char *dtype) {
    if (!strcmp(dtype, "float32") || !strcmp(dtype, "int32")) return 4;
    if (!strcmp(dtype, "float64") || !strcmp(dtype, "int64")) return 8;
    if (!strcmp(dtype, "float16")) return 2;
    return 0;
}

static int all_finite(const sc_field *f, size_t n) {
    if (!strcmp(f->dtype, "float64")) {
        const double *x = f->data;
        for (size_t i = 0; i < n; i++) if (!isfinite(x[i])) return 0;
    } else if (!strcmp(f->dtype, "float32")) {
        const float *x = f->data;
        for (size_t i = 0; i < n; i++) if (!isfinite(x[i])) return 0;
    }
    return 1;
}

/* One control request; the reply must contain "ok": true. With `reply_out`, the reply is copied there. */
static int request_reply(sc_client *c, const char *op, const char *extra, char *reply_out, size_t reply_size) {
    buf b = {0};
    int rc = put(&b, "{\"op\": \"%s\", \"simulation_id\": %s%s}", op, c->simulation_id, extra ? extra : "");
    if (!rc && zmq_send(c->req, b.s, b.len, 0) < 0) rc = fail("control send failed: %s", zmq_strerror(zmq_errno()));
    free(b.s);
    if (rc) return rc;
    char reply[1024];
    int n = zmq_recv(c->req, reply, sizeof reply - 1, 0);
    if (n < 0) return fail("no answer to '%s' from the server: %s", op, zmq_strerror(zmq_errno()));
    reply[n < (int)sizeof reply - 1 ? n : (int)sizeof reply - 1] = 0;
    if (!strstr(reply, "\"ok\": true")) return fail("server refused '%s': %s", op, reply);
    if (reply_out && reply_size) snprintf(reply_out, reply_size, "%s", reply);
    return 0;
}

static int request(sc_client *c, const char *op, const char *extra) { return request_reply(c, op, extra, NULL, 0); }

static void destroy(sc_client *c) {
    if (c->push) zmq_close(c->push);
    if (c->req) zmq_close(c->req);
    if (c->ctx) zmq_ctx_term(c->ctx);
    free(c->simulation_id);
    free(c->parameters);
    free(c);
}

/* CURVE keys from SURROGATE_CURVE_SERVER / _PUBLIC / _SECRET (40-character Z85 each), for a
 * server bound beyond 127.0.0.1; nothing when none is set. */
static int curve_keys(void *sock) {
    const char *names[] = {"SURROGATE_CURVE_SERVER", "SURROGATE_CURVE_PUBLIC", "SURROGATE_CURVE_SECRET"};
    const int options[] = {ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY};
    const char *values[3];
    int set = 0;
    for (int i = 0; i < 3; i++) {
        values[i] = getenv(names[i]);
        set += values[i] && *values[i];
    }
    if (set == 0) return 0;
    for (int i = 0; i < 3; i++) {
        if (!values[i] || strlen(values[i]) != 40) return fail("%s: set all three SURROGATE_CURVE_* to 40-character Z85 keys", names[i]);
        if (zmq_setsockopt(sock, options[i], values[i], 41)) return fail("%s: %s", names[i], zmq_strerror(zmq_errno()));
    }
    return 0;
}

sc_client *sc_connect(const char *data_address, const char *control_address, const char *simulation_id,
                      const char *const *param_names, const double *param_values, int n_params, int timeout_ms) {
    if (!simulation_id || !*simulation_id) { fail("simulation_id must be a non-empty string"); return NULL; }
    sc_client *c = calloc(1, sizeof *c);
    if (!c) { fail("out of memory"); return NULL; }
    c->last_step = -1;
    buf id = {0}, params = {0};
    int rc = put_string(&id, simulation_id) || put(&params, "{");
    for (int i = 0; !rc && i < n_params; i++)
        rc = (i && put(&params, ", ")) || put_string(&params, param_names[i]) || put(&params, ": ") || put_number(&params, param_values[i]);
    rc = rc || put(&params, "}");
    c->simulation_id = id.s;
    c->parameters = params.s;
    if (rc) { destroy(c); return NULL; }
    int hwm = 4, zero = 0;
    c->ctx = zmq_ctx_new();
    c->push = zmq_socket(c->ctx, ZMQ_PUSH);
    c->req = zmq_socket(c->ctx, ZMQ_REQ);
    zmq_setsockopt(c->push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->push, ZMQ_LINGER, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(c->req, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(c->req, ZMQ_LINGER, &zero, sizeof zero);
    if (curve_keys(c->push) || curve_keys(c->req)) { destroy(c); return NULL; }
    if (zmq_connect(c->push, data_address) || zmq_connect(c->req, control_address)) {
        fail("cannot connect to %s / %s: %s", data_address, control_address, zmq_strerror(zmq_errno()));
        destroy(c);
        return NULL;
    }
    buf extra = {0};
    rc = put(&extra, ", \"protocol\": %d, \"parameters\": %s", SC_PROTOCOL_VERSION, c->parameters);
    rc = rc || request(c, "register", extra.s);
    free(extra.s);
    if (rc) { destroy(c); return NULL; }
    return c;
}

int sc_send(sc_client *c, long step, double time, const sc_field *fields, int n_fields) {
    if (step < 0) return fail("step must be >= 0, got %ld", step);
    if (n_fields < 1) return fail("a step needs at least one field");
    buf h = {0};
    int rc = put(&h, "{\"protocol\": %d, \"simulation_id\": %s, \"step\": %ld, \"time\": ", SC_PROTOCOL_VERSION, c->simulation_id, step)
             || put_number(&h, time) || put(&h, ", \"parameters\": %s, \"fields\": [", c->parameters);
    for (int i = 0; !rc && i < n_fields; i++) {
        const sc_field *f = &fields[i];
        size_t n = 1;
        if (!dtype_size(f->dtype)) { rc = fail("field '%s': dtype '%s' is not supported", f->name, f->dtype); break; }
        rc = (i && put(&h, ", ")) || put(&h, "{\"name\": ") || put_string(&h, f->name) || put(&h, ", \"dtype\": \"%s\", \"shape\": [", f->dtype);
        for (int d = 0; !rc && d < f->ndim; d++) {
            if (f->shape[d] < 0) rc = fail("field '%s': negative extent", f->name);
            n *= (size_t)f->shape[d];
            rc = rc || put(&h, d ? ", %ld" : "%ld", f->shape[d]);
        }
        rc = rc || put(&h, "]}");
        if (!rc && !all_finite(f, n)) rc = fail("field '%s' at step %ld has NaN/Inf values", f->name, step);
    }
    rc = rc || put(&h, "]}");
    if (!rc && zmq_send(c->push, h.s, h.len, ZMQ_SNDMORE) < 0) rc = fail("send failed: %s", zmq_strerror(zmq_errno()));
    free(h.s);
    for (int i = 0; !rc && i < n_fields; i++) {
        size_t n = dtype_size(fields[i].dtype);
        for (int d = 0; d < fields[i].ndim; d++) n *= (size_t)fields[i].shape[d];
        if (zmq_send(c->push, fields[i].data, n, i + 1 < n_fields ? ZMQ_SNDMORE : 0) < 0)
            rc = fail("send failed: %s", zmq_strerror(zmq_errno()));
    }
    if (!rc && step > c->last_step) c->last_step = step;
    return rc;
}

int sc_heartbeat(sc_client *c) { return request(c, "heartbeat", NULL); }

/* `done` names the last step sent and is repeated until the server has received that step,
   so that steps still queued behind it (a full buffer holding them back) are not dropped. */
int sc_close(sc_client *c, int finished) {
    int rc = 0;
    if (finished) {
        char extra[64], reply[1024];
        snprintf(extra, sizeof extra, ", \"last_step\": %ld", c->last_step);
        while (!(rc = request_reply(c, "done", c->last_step >= 0 ? extra : NULL, reply, sizeof reply)) &&
               strstr(reply, "\"received\": false")) {
            struct timespec pause = {0, 50 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    destroy(c);
    return rc;
}
