//! Running independent pieces of work (files, clusters, objects) on all
//! cores, in order, and only when there is enough work: starting the thread
//! pool costs more than a small fleet takes to compile.

use rayon::prelude::*;

/// Below this much input (bytes of KDL, or its equivalent) work stays on the
/// calling thread. One cluster is about 1 KiB of KDL.
const MIN_PARALLEL_BYTES: usize = 48 * 1024;

/// Whether work proportional to `bytes` of input is worth spreading out.
pub fn worth_it(bytes: usize) -> bool {
    bytes >= MIN_PARALLEL_BYTES && rayon::current_num_threads() > 1
}

/// `items.map(f)`, in parallel when `bytes` of input make it worth it.
/// Results keep the order of `items`.
pub fn map<T: Send, R: Send>(items: Vec<T>, bytes: usize, f: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    if items.len() > 1 && worth_it(bytes) {
        items.into_par_iter().map(f).collect()
    } else {
        items.into_iter().map(f).collect()
    }
}

/// Drops `value` on another thread when it came from `bytes` of input
/// large enough for freeing it to take noticeable time.
pub fn drop_aside<T: Send + 'static>(value: T, bytes: usize) {
    if worth_it(bytes) {
        rayon::spawn(move || drop(value));
    }
}

/// `(a(), b())`, side by side when `bytes` of input make it worth it.
pub fn join<A: Send, B: Send>(bytes: usize, a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    if worth_it(bytes) { rayon::join(a, b) } else { (a(), b()) }
}
