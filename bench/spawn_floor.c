// The floor of the exec-throughput measurement (issue 28): THREADS threads, each spawning PROGRAM (posix_spawn +
// waitpid) back to back for SECONDS. Prints one JSON object: the spawns made, the seconds taken, and every spawn's
// latency in milliseconds. Built by bench/harness.py with the machine's cc; standard C and POSIX only.
//   spawn_floor THREADS SECONDS PROGRAM [ARG...]
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

struct worker {
    char **argv;
    double deadline;
    double *latencies;
    size_t count, capacity;
    int failures;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void *run(void *argument) {
    struct worker *w = argument;
    while (now() < w->deadline) {
        double start = now();
        pid_t pid;
        int status;
        if (posix_spawn(&pid, w->argv[0], NULL, NULL, w->argv, environ) != 0 || waitpid(pid, &status, 0) < 0 ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            w->failures++;
            continue;
        }
        if (w->count == w->capacity) {
            w->capacity = w->capacity ? w->capacity * 2 : 1024;
            w->latencies = realloc(w->latencies, w->capacity * sizeof(double));
            if (!w->latencies) abort();
        }
        w->latencies[w->count++] = (now() - start) * 1000;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: spawn_floor THREADS SECONDS PROGRAM [ARG...]\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    double seconds = atof(argv[2]);
    if (threads < 1 || threads > 10000 || seconds <= 0) return 2;
    struct worker *workers = calloc(threads, sizeof *workers);
    pthread_t *ids = calloc(threads, sizeof *ids);
    double start = now();
    for (int i = 0; i < threads; i++) {
        workers[i].argv = argv + 3;
        workers[i].deadline = start + seconds;
        if (pthread_create(&ids[i], NULL, run, &workers[i]) != 0) return 1;
    }
    int failures = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        failures += workers[i].failures;
    }
    double taken = now() - start;
    printf("{\"seconds\": %.6f, \"failures\": %d, \"latencies\": [", taken, failures);
    int first = 1;
    for (int i = 0; i < threads; i++) {
        for (size_t j = 0; j < workers[i].count; j++) {
            printf(first ? "%.4f" : ",%.4f", workers[i].latencies[j]);
            first = 0;
        }
    }
    printf("]}\n");
    return 0;
}
