//! Tests only: see `tests/`. What the TAP tests share: a network namespace with one TAP
//! device, created for the test and removed after it (also on failure).

use std::process::{Command, ExitCode};

/// Runs `ip` with `args`.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("`ip` not runnable (install iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace, deleted when dropped (whatever happened inside).
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.0]) {
            eprintln!("netns: {e}");
        }
    }
}

/// The entry point of a TAP test binary. Outside the namespace (`env` unset): creates a
/// namespace with the TAP device `tap` (the kernel's address on it: `host_cidr`), re-runs this
/// binary inside it with `env` set, removes the namespace. Inside: runs `inside`.
///
/// Fails (never skips) when the namespace cannot be made: no root, no `ip`, no `/dev/net/tun`.
pub fn main(
    test: &str,
    env: &str,
    tap: &str,
    host_cidr: &str,
    inside: fn() -> ExitCode,
) -> ExitCode {
    if std::env::var_os(env).is_some() {
        return inside();
    }
    match outside(test, env, tap, host_cidr) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{test}: cannot run: {e}");
            println!("test result: FAILED. 0 passed; 1 failed");
            ExitCode::FAILURE
        }
    }
}

fn outside(test: &str, env: &str, tap: &str, host_cidr: &str) -> Result<ExitCode, String> {
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun missing (TAP devices unavailable)".into());
    }
    let name = format!("{test}-{}", std::process::id());
    ip(&["netns", "add", &name])?;
    let ns = Netns(name);
    let exec = |args: &[&str]| {
        let mut v = vec!["netns", "exec", &ns.0, "ip"];
        v.extend_from_slice(args);
        ip(&v)
    };
    exec(&["link", "set", "lo", "up"])?;
    exec(&["tuntap", "add", "dev", tap, "mode", "tap"])?;
    exec(&["addr", "add", host_cidr, "dev", tap])?;
    exec(&["link", "set", tap, "up"])?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let status = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(env, "1")
        .status()
        .map_err(|e| e.to_string())?;
    drop(ns);
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
