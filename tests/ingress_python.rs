//! The Python example (`examples/python/client.py`, which uses only the `msgpack`
//! package) talks to the daemon over TCP and over the Unix socket: hello, health, a
//! signal, a book, a refused request, a progress report, and an order answered after
//! its tick. Without
//! python3 and msgpack it fails, saying how to install them (`.ci/run` installs
//! msgpack): a test that cannot run must not pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ingress_support;

use std::process::{Command, Output};

use ingress_support::*;

fn python_with_msgpack() -> bool {
    Command::new("python3")
        .args(["-c", "import msgpack"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs the example on a thread while the runtime ticks (its order needs a tick).
async fn run_example(daemon: &mut Daemon, connect: [String; 2]) -> Output {
    let (finished, finished_rx) = tokio::sync::oneshot::channel();
    let script = repo_root().join("examples/python/client.py");
    let runner = std::thread::spawn(move || {
        let output = Command::new("python3")
            .arg(script)
            .args(connect)
            .args(["--client", GAME.0, "--token", GAME.1, "--order"])
            .args(["--progress", "gpu0"])
            .output()
            .unwrap();
        let _ = finished.send(());
        output
    });
    daemon
        .runtime
        .run_until(
            async {
                let _ = finished_rx.await;
            },
            |_| {},
        )
        .await
        .unwrap();
    runner.join().unwrap()
}

#[actix::test]
async fn the_python_example_speaks_the_protocol_over_both_sockets() {
    assert!(
        python_with_msgpack(),
        "this test needs python3 with the msgpack package: `python3 -m pip install msgpack` \
         or `apt-get install python3-msgpack` (.ci/run does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = ingress_config(dir.path(), "gpu_bottleneck.toml", |table| {
        table["runtime"]
            .as_table_mut()
            .unwrap()
            .insert("tick_hz".into(), 50.into());
        // The example's client bids for GPU memory and reports progress on gpu0.
        let effects = table["clients"].as_array_mut().unwrap()[0]["effects"]
            .as_array_mut()
            .unwrap();
        effects.push("order:gpu_memory_mb".into());
        effects.push("progress:gpu0".into());
    });
    let mut daemon = Daemon::start(&config);
    let tcp = daemon.ingress.tcp_address().unwrap().to_string();
    let unix = daemon.ingress.unix_socket().unwrap().display().to_string();
    for connect in [["--tcp".to_owned(), tcp], ["--unix".to_owned(), unix]] {
        let output = run_example(&mut daemon, connect).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        for expected in [
            "health: ok",
            "hello: game is agent",
            "signal: queued for tick",
            "book power_budget_mw",
            "refused as expected: forbidden",
            "progress: 2500000 micro-units of gpu0 queued for tick",
            "filled: 512",
            "done",
        ] {
            assert!(
                stdout.contains(expected),
                "missing `{expected}` in:\n{stdout}"
            );
        }
    }
}
