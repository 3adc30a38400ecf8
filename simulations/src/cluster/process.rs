//! A child process of a local cluster (a `phalanx run`): its standard
//! error kept in a log file, and killed when dropped, so that a failing
//! test or an interrupted run leaves no process behind.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use super::error::ClusterError;

/// How many of the log's last lines [`ChildProcess::exited`] reports.
const TAIL_LINES: usize = 10;

/// A child process, killed when dropped.
#[derive(Debug)]
pub struct ChildProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl ChildProcess {
    /// Starts `command`, its standard output discarded and its standard
    /// error written to `log` (created anew).
    pub fn spawn(mut command: Command, log: &Path) -> Result<ChildProcess, ClusterError> {
        let file = std::fs::File::create(log)
            .map_err(ClusterError::io(format!("creating {}", log.display())))?;
        let child =
            command
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .map_err(ClusterError::io(format!(
                    "starting {}",
                    command.get_program().to_string_lossy()
                )))?;
        Ok(ChildProcess {
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// Its process id, while it has not been stopped.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Its log so far (empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether its log holds `text`.
    pub fn log_contains(&self, text: &str) -> bool {
        self.log().contains(text)
    }

    /// If it has exited: its status and the last lines of its log.
    pub fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(TAIL_LINES).collect();
        Some(format!(
            "{status}: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    }

    /// Waits for it to exit by itself.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        match self.child.as_mut() {
            Some(child) => child.wait(),
            None => Err(io::Error::other("the process was stopped")),
        }
    }

    /// Kills it and waits for it to end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_process_keeps_its_log_and_reports_its_exit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("p.log");
        let mut process =
            ChildProcess::spawn(shell("echo one >&2; echo two >&2; exit 3"), &log).expect("spawn");
        assert!(!process.wait().expect("exits").success());
        let exited = process.exited().expect("exited");
        assert!(exited.ends_with("one\ntwo"), "{exited}");
        assert!(process.log_contains("two"));
        assert_eq!(process.log_path(), log);
    }

    #[test]
    fn a_dropped_process_is_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut process =
            ChildProcess::spawn(shell("sleep 30"), &dir.path().join("p.log")).expect("spawn");
        let pid = process.id().expect("running");
        assert!(process.exited().is_none());
        drop(process);
        let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
        // Reaped: its /proc entry is gone (on systems that have one).
        assert!(!proc_dir.exists() || !Path::new("/proc/self").exists());
    }
}
