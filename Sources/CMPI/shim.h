// Open MPI through functions: MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM and friends are macros over
// addresses of library globals, which Swift cannot import, so each call the trainer makes is
// wrapped here with its handles filled in.
#include <mpi.h>
#include <stdint.h>

static inline int diffuse_mpi_initialized(void) { int flag = 0; MPI_Initialized(&flag); return flag; }
static inline int diffuse_mpi_init(void) { return MPI_Init(NULL, NULL); }
static inline int diffuse_mpi_rank(void) { int rank = 0; MPI_Comm_rank(MPI_COMM_WORLD, &rank); return rank; }
static inline int diffuse_mpi_size(void) { int size = 1; MPI_Comm_size(MPI_COMM_WORLD, &size); return size; }
static inline int diffuse_mpi_allreduce_sum_float(float *values, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static inline int diffuse_mpi_allreduce_sum_double(double *values, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static inline int diffuse_mpi_allreduce_max_uint64(uint64_t *values, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
}
static inline int diffuse_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static inline int diffuse_mpi_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }
static inline int diffuse_mpi_finalize(void) { return MPI_Finalize(); }
