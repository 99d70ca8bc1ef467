//! Waiting for the terminal's keys without letting a hung-up terminal spin crossterm,
//! which retries forever a read that returns nothing once the terminal is gone.

use std::{os::fd::BorrowedFd, time::Duration};

use nix::{
    errno::Errno,
    poll::{PollFd, PollFlags, PollTimeout},
};

/// What the terminal has for top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Keys (or other input) to read.
    Ready,
    /// Nothing within the time waited.
    Idle,
    /// The terminal hung up (or was closed): crossterm must not be asked to read it.
    Gone,
}

/// Waits up to `timeout` for input on `terminal` (standard input: crossterm reads it
/// when it is a terminal).
pub fn wait_for_input(terminal: BorrowedFd<'_>, timeout: Duration) -> Result<Input, Errno> {
    let mut fds = [PollFd::new(terminal, PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match nix::poll::poll(&mut fds, timeout) {
        Ok(0) | Err(Errno::EINTR) => return Ok(Input::Idle),
        Ok(_) => {}
        Err(error) => return Err(error),
    }
    let ready = fds[0].revents().unwrap_or(PollFlags::empty());
    Ok(
        if ready.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
            Input::Gone
        } else if ready.contains(PollFlags::POLLIN) {
            Input::Ready
        } else {
            Input::Idle
        },
    )
}

#[cfg(test)]
mod tests {
    use std::{io::Write as _, os::fd::AsFd as _};

    use super::*;

    #[test]
    fn input_then_a_hang_up_are_told_apart() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let wait = || wait_for_input(reader.as_fd(), Duration::from_millis(10)).unwrap();
        assert_eq!(wait(), Input::Idle);
        writer.write_all(b"q").unwrap();
        assert_eq!(wait(), Input::Ready);
        drop(writer);
        assert_eq!(wait(), Input::Gone);
    }
}
