/* A small C solver streaming into surrogate: the 1D heat equation u_t = kappa u_xx on a
 * periodic grid of N points, explicit Euler, u0 = sin(2 pi x). Usage:
 *   heat_example DATA_ADDRESS CONTROL_ADDRESS SIMULATION_ID N_STEPS KAPPA
 * Each step's field "u" (float64, N) is sent; exit status 0 on success. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "surrogate_client.h"

#define N 64

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s DATA_ADDRESS CONTROL_ADDRESS SIMULATION_ID N_STEPS KAPPA\n", argv[0]);
        return 2;
    }
    long n_steps = atol(argv[4]);
    double kappa = atof(argv[5]), dx = 1.0 / N, dt = 0.2 * dx * dx / kappa, u[N], next[N];
    for (int j = 0; j < N; j++) u[j] = sin(2 * M_PI * j * dx);
    const char *names[] = {"kappa"};
    sc_client *c = sc_connect(argv[1], argv[2], argv[3], names, &kappa, 1, 5000);
    if (!c) { fprintf(stderr, "heat_example: %s\n", sc_last_error()); return 1; }
    long shape[] = {N};
    sc_field field = {"u", "float64", 1, shape, u};
    for (long step = 0; step <= n_steps; step++) {
        if (step) {
            for (int j = 0; j < N; j++) next[j] = u[j] + kappa * dt / (dx * dx) * (u[(j + N - 1) % N] - 2 * u[j] + u[(j + 1) % N]);
            for (int j = 0; j < N; j++) u[j] = next[j];
        }
        if (sc_send(c, step, step * dt, &field, 1) || (step % 10 == 0 && sc_heartbeat(c))) {
            fprintf(stderr, "heat_example: %s\n", sc_last_error());
            sc_close(c, 0);
            return 1;
        }
    }
    if (sc_close(c, 1)) { fprintf(stderr, "heat_example: %s\n", sc_last_error()); return 1; }
    return 0;
}
