//! SIGINT, SIGTERM and SIGHUP (the terminal closed: an ssh session that
//! dropped) while `apply` writes: the first asks the apply to stop
//! starting writes (it lets those in flight finish, releases the
//! locks and reports); a second one ends the process at once. Outside an
//! apply's writes a signal ends the process at once, as usual.
//!
//! The handlers only set atomics (`signal-hook`), so they are safe in a
//! signal context; the apply driver, the lock waits and the request loop
//! poll [`requested`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};

/// When true, the next signal ends the process at once: no apply is
/// writing, or a signal already asked the apply to stop.
static END_AT_ONCE: AtomicBool = AtomicBool::new(true);
/// The signal that asked the apply to stop (0: none).
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

/// How long writes already in flight may take to finish once a signal
/// asked the apply to stop; a request still running then is abandoned.
pub const GRACE: Duration = Duration::from_secs(5);

/// A stop requested by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop(i32);

impl Stop {
    /// The exit code: 128 + the signal's number (130 for SIGINT, 143 for
    /// SIGTERM, 129 for SIGHUP).
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.0).unwrap_or(1)
    }

    /// `SIGINT`, `SIGTERM` or `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self.0 {
            SIGINT => "SIGINT",
            SIGHUP => "SIGHUP",
            _ => "SIGTERM",
        }
    }
}

/// Makes the next SIGINT or SIGTERM a request to stop rather than the end
/// of the process, until [`disarm`]. Installs the handlers on first use.
pub fn arm() {
    INSTALL.call_once(|| {
        for (signal, code) in [(SIGINT, 130), (SIGTERM, 143), (SIGHUP, 129)] {
            // Order matters: the exit is checked before the flag is set,
            // so the first signal (while armed) only sets it.
            let installed = signal_hook::flag::register_conditional_shutdown(signal, code, &END_AT_ONCE)
                .and_then(|_| signal_hook::flag::register_usize(signal, &RECEIVED, signal as usize))
                .and_then(|_| signal_hook::flag::register(signal, &END_AT_ONCE));
            if let Err(e) = installed {
                eprintln!("warning: cannot handle signal {signal}: {e}; an interrupted apply may leave its lock");
            }
        }
    });
    if RECEIVED.load(Ordering::SeqCst) == 0 {
        END_AT_ONCE.store(false, Ordering::SeqCst);
    }
}

/// From now on a signal ends the process at once again.
pub fn disarm() {
    END_AT_ONCE.store(true, Ordering::SeqCst);
}

/// When a stop was first seen by [`requested`]: writes in flight get
/// [`GRACE`] from then. (A handler may not read the clock safely; the
/// driver looks at least twice a second.)
static SEEN: Mutex<Option<Instant>> = Mutex::new(None);

/// The signal that asked the apply to stop, if one did.
pub fn requested() -> Option<Stop> {
    let stop = match RECEIVED.load(Ordering::SeqCst) {
        0 => return None,
        s => Stop(i32::try_from(s).unwrap_or(SIGTERM)),
    };
    SEEN.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Instant::now);
    Some(stop)
}

/// Whether a stop was requested more than [`GRACE`] ago: a write that was
/// in flight then and still runs is abandoned.
pub fn past_grace() -> bool {
    requested().is_some() && SEEN.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|t| t.elapsed() >= GRACE)
}

/// Resolves once a request that started before any stop should be
/// abandoned ([`GRACE`] after the stop); never for one that started after
/// (releasing the locks, reporting).
pub async fn abandon_if_in_flight(started_before_stop: bool) {
    if !started_before_stop {
        return std::future::pending().await;
    }
    while !past_grace() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
