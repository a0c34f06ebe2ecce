//! Schedules through the real driver, on tokio's paused clock.

mod common;

use common::{Log, builder, marking, secs, start, stop, wait};
use orchestrator::WorkerSpec;

#[tokio::test(start_paused = true)]
async fn interval_fires_at_start_and_on_a_fixed_grid_without_drift() {
    let log = Log::new();
    let (handle, task) = start(builder().worker(marking("tick", &log, 3_000).interval(secs(10))));
    wait(45_000).await;
    stop(handle, task).await;
    assert_eq!(log.times("tick"), [0, 10_000, 20_000, 30_000, 40_000]);
}

#[tokio::test(start_paused = true)]
async fn fixed_delay_counts_from_the_end_of_each_run() {
    let log = Log::new();
    let (handle, task) = start(builder().worker(marking("drain", &log, 3_000).delay(secs(10))));
    wait(40_000).await;
    stop(handle, task).await;
    assert_eq!(log.times("drain"), [0, 13_000, 26_000, 39_000]);
}

#[tokio::test(start_paused = true)]
async fn initial_delay_postpones_the_first_fire() {
    let log = Log::new();
    let (handle, task) = start(builder().worker(marking("late", &log, 0).interval(secs(10)).initial_delay(secs(5))));
    wait(26_000).await;
    stop(handle, task).await;
    assert_eq!(log.times("late"), [5_000, 15_000, 25_000]);
}

#[tokio::test(start_paused = true)]
async fn cron_fires_on_second_boundaries_of_the_wall_clock() {
    let log = Log::new();
    let (handle, task) = start(builder().worker(marking("every_2s", &log, 0).cron("*/2 * * * * *")));
    wait(10_500).await;
    stop(handle, task).await;
    let times = log.times("every_2s");
    // Five or six fires in 10.5 s depending on where in the second we started,
    // each 2 s after the previous one.
    assert!((5..=6).contains(&times.len()), "{times:?}");
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], 2_000, "{times:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn status_shows_the_next_fire_of_an_idle_worker() {
    let log = Log::new();
    let (handle, task) =
        start(builder().worker(marking("hourly", &log, 0).interval(secs(3600)).initial_delay(secs(60))));
    wait(1_000).await;
    let status = handle.status();
    let hourly = status.worker("hourly").expect("listed");
    let ahead = hourly.next_fire.expect("scheduled") - status.taken_at;
    assert_eq!(ahead.num_seconds(), 59);
    assert_eq!(hourly.state, orchestrator::WorkerState::Idle);
    stop(handle, task).await;
}

#[tokio::test(start_paused = true)]
async fn the_context_tells_when_the_fire_was_due() {
    let log = Log::new();
    let late = {
        let log = log.clone();
        WorkerSpec::new("late", move |ctx: orchestrator::Context| {
            let log = log.clone();
            async move { log.mark(format!("late by {}", ctx.due().elapsed().as_millis())) }
        })
        .interval(secs(10))
        .initial_delay(secs(1))
    };
    // `hog` blocks `late` from 0 s to 3 s: its fire due at 1 s starts 2 s late.
    let (handle, task) =
        start(builder().worker(marking("hog", &log, 3_000).interval(secs(60)).blocks("late")).worker(late));
    wait(12_000).await;
    stop(handle, task).await;
    assert_eq!(log.events(), ["hog", "late by 2000", "late by 0"]);
}

#[tokio::test(start_paused = true)]
async fn an_idle_orchestrator_wakes_only_when_something_is_due() {
    // W2 of the benchmarks, on the virtual clock: 1,000 hourly workers,
    // first due an hour after the start. Tokio's paused clock jumps to the
    // next armed timer, so a driver that polled (every second, say) would
    // wake thousands of times here.
    let mut orchestrator = builder();
    for w in 0..1_000 {
        orchestrator = orchestrator.worker(
            WorkerSpec::new(format!("hourly-{w:04}"), || async {}).interval(secs(3600)).initial_delay(secs(3600)),
        );
    }
    let (handle, task) = start(orchestrator);
    wait(1).await;
    let at_start = handle.status().wakeups;

    wait(3_599_000 - 1).await; // one second before the fires
    let status = handle.status();
    assert_eq!(status.wakeups, at_start, "woke up while nothing was due");
    assert!(status.workers.iter().all(|w| w.runs == 0));

    wait(2_000).await; // the fires, and the hour after them until their next slot
    let status = handle.status();
    assert!(status.workers.iter().all(|w| w.runs == 1 && w.successes == 1));
    assert_eq!(status.wakeups, at_start + 1, "one wake-up for the 1,000 fires due at the same instant");
    wait(3_598_000).await;
    assert_eq!(handle.status().wakeups, at_start + 1);
    wait(2_000).await;
    let status = handle.status();
    assert!(status.workers.iter().all(|w| w.runs == 2));
    assert_eq!(status.wakeups, at_start + 2);
    stop(handle, task).await;
}
