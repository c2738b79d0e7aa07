//! The README's quick start, run as written against the real binary (with `candor` pointing
//! at the built binary instead of `cargo run`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_quick_start_runs_as_written() {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let start = readme
        .find("## Quick start")
        .expect("a quick start section");
    let block = &readme[start..];
    let block = &block[block.find("```sh\n").unwrap() + 6..];
    let script = &block[..block.find("\n```").unwrap()];
    assert!(
        script.contains("candor() {"),
        "the quick start defines the candor function"
    );
    let script: String = script
        .lines()
        .map(|l| {
            if l.starts_with("candor() {") {
                "candor() { \"$CANDOR_BIN\" \"$@\"; }"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{base}/readyz")).call().is_err() {
        assert!(Instant::now() < deadline, "server not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The README talks to the default address; point it at this test's server instead.
    let script = script.replace("http://127.0.0.1:8080", &base);
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("CANDOR_BIN", env!("CARGO_BIN_EXE_candor"))
        .env("CANDOR_SERVER", &base)
        .output()
        .unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "quick start failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("OK: entry 2 is in candor.localhost/log"),
        "{stdout}"
    );
    assert!(
        stdout.contains("is consistent with the receipt's checkpoint"),
        "{stdout}"
    );
    assert!(stdout.contains("\"hashes\""), "{stdout}");
    assert!(stdout.contains("\"current\""), "{stdout}");
}
