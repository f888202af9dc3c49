//! A sub-millisecond timer for the open-loop pacer.
//!
//! tokio's timers have millisecond granularity: a request due at 10.2 ms would be sent at about
//! 11 ms, and that lag would be charged to the target's response time. On Linux the pacer waits
//! on a `timerfd` registered with tokio's reactor instead, which fires within microseconds and
//! burns no CPU while waiting. Elsewhere it falls back to tokio's timer (and the wake lag the
//! summary reports shows the difference).

use std::time::Instant;

/// Waits until a deadline with sub-millisecond precision where the platform allows.
pub struct PreciseTimer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl PreciseTimer {
    /// A timer; must be created inside a tokio runtime with I/O enabled.
    pub fn new() -> PreciseTimer {
        #[cfg(target_os = "linux")]
        {
            use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )
            .ok()
            .and_then(register);
            PreciseTimer { fd }
        }
        #[cfg(not(target_os = "linux"))]
        {
            PreciseTimer {}
        }
    }

    /// Whether waits are sub-millisecond (a timerfd) rather than tokio's 1 ms timer.
    pub fn is_precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.fd.is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// Returns at or shortly after `deadline`.
    pub async fn sleep_until(&self, deadline: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd
            && timerfd_wait(fd, deadline).await.is_ok()
        {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

impl Default for PreciseTimer {
    fn default() -> Self {
        PreciseTimer::new()
    }
}

/// Registers the timerfd with tokio's reactor.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn register(fd: std::os::fd::OwnedFd) -> Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: `register` requires the descriptor to stay open and the same for the AsyncFd's
    // whole life. An `OwnedFd` moved into the AsyncFd is closed only when the AsyncFd drops it,
    // and its `as_raw_fd` always returns the same descriptor.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.ok()
}

#[cfg(target_os = "linux")]
async fn timerfd_wait(
    fd: &tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    deadline: Instant,
) -> std::io::Result<()> {
    use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
    let wait = deadline.saturating_duration_since(Instant::now());
    if wait.is_zero() {
        return Ok(());
    }
    let value = Timespec {
        tv_sec: wait.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: wait.subsec_nanos().into(),
    };
    let spec = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: value,
    };
    timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
    loop {
        let mut guard = fd.readable().await?;
        let mut buf = [0u8; 8];
        match guard.try_io(|inner| {
            rustix::io::read(inner.get_ref(), &mut buf).map_err(std::io::Error::from)
        }) {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
}
