//! The `sauna` binary: the command line of the library with its built-in responders.

use std::process::ExitCode;

/// jemalloc rather than the system allocator: a consumer allocates and frees a few small
/// objects per command across several threads, which glibc's malloc serves with more CPU and,
/// through its per-thread arenas, more resident memory (see the README's performance section).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    sauna::cli::main(&[])
}
