/* surrogate streaming client for C, C++ and Fortran (via ISO_C_BINDING) solvers.
 *
 * Speaks the protocol of surrogate/online/protocol.py, version 1: one ZeroMQ multipart
 * message per time step, frame 0 a JSON header
 *   {"protocol": 1, "simulation_id": ..., "step": ..., "time": ..., "parameters": {...},
 *    "fields": [{"name": ..., "dtype": ..., "shape": [...]}, ...]}
 * and one raw C-order frame per field. Control requests (register, heartbeat, done) go
 * over REQ/REP with a timeout; data over PUSH with a send high-water mark, so sc_send
 * blocks while the server applies backpressure.
 *
 *   const char *names[] = {"kappa"}; double values[] = {0.01};
 *   sc_client *c = sc_connect(data_addr, control_addr, "heat-0", names, values, 1, 5000);
 *   long shape[] = {64};
 *   sc_field u = {"u", "float64", 1, shape, data};
 *   sc_send(c, step, t, &u, 1);
 *   sc_close(c, 1);
 *
 * A server bound beyond 127.0.0.1 speaks CURVE: sc_connect takes the keys from the
 * environment (SURROGATE_CURVE_SERVER, SURROGATE_CURVE_PUBLIC, SURROGATE_CURVE_SECRET, as
 * `surrogate online` hands them to the solvers it launches; see surrogate/online/curve.py).
 *
 * Every call returns 0 (or a client) on success; on failure -1 (or NULL) and sc_last_error()
 * says why. Build: cc -c surrogate_client.c, link with -lzmq (Debian: libzmq3-dev).
 */
#ifndef SURROGATE_CLIENT_H
#define SURROGATE_CLIENT_H

#ifdef __cplusplus
extern "C" {
#endif

#define SC_PROTOCOL_VERSION 1

typedef struct sc_client sc_client;

typedef struct {
    const char *name;  /* field name */
    const char *dtype; /* "float32", "float64", "float16", "int32" or "int64" */
    int ndim;
    const long *shape; /* ndim extents, C order */
    const void *data;  /* prod(shape) values; copied by sc_send, reusable when it returns */
} sc_field;

/* Connects both sockets and registers the simulation; NULL on refusal or timeout. */
sc_client *sc_connect(const char *data_address, const char *control_address, const char *simulation_id,
                      const char *const *param_names, const double *param_values, int n_params, int timeout_ms);
/* Sends one time step: n_fields fields, all finite. */
int sc_send(sc_client *c, long step, double time, const sc_field *fields, int n_fields);
int sc_heartbeat(sc_client *c);
/* Says "done" with the last step sent when finished != 0 (repeated until the server has received
   that step, so nothing queued is lost), then closes the sockets and frees c. */
int sc_close(sc_client *c, int finished);
/* The reason for the last failure in this thread. */
const char *sc_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
