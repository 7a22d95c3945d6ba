"""Voice commands: recognition, false actions, latency and CPU of `play --listen` (run on demand).

    python benchmarks/listen.py

Spoken commands: the nine command words (pause, resume, continue, next, back, repeat, louder,
softer, stop) by espeak and Piper at speech rates 0.85 and 1.15, quiet and over room noise
(-40 dBFS pink), alone and over the coach's voice at -10 dB (echo): 2 x 2 x 2 x 2 x 9 = 144
commands, through the recognizer with the calibrated thresholds and the echo filter, fed in
30 ms pieces as the microphone delivers them.  Rates, noise and echo differ from the
calibration's (benchmarks/calibrate_listen.py), so these figures are not its own.

- recognized: the right action within 1.5 s of the word's end (goal >= 95 %);
- false actions: actions taken on whole routines of coach audio at the echo level with nobody
  speaking, per hour of that audio (goal 0), and wrong actions during the commands;
- latency: from the end of the word (its clip's last sample) to the action: the audio the
  recognizer needed past the word's end, plus the 30 ms capture buffer, plus the time the feed
  call took (goal median <= 0.6 s);
- CPU: process time over audio time while listening, one core (goal <= 20 %).
"""

from __future__ import annotations

import platform
import statistics
from collections import Counter

from listen_corpus import coach, command_streams, echo_stream, match, run

from voicecoach.play.listen import Recognizer, calibrated_thresholds

RATES = (0.85, 1.15)
ENGINES = ("espeak", "piper")
ECHO_ROUTINE = ("eye-area.yaml", "piper")
QUIET_ROUTINES = (("eye-area.yaml", "piper"), ("quick-3-minute.yaml", "espeak"))
CAPTURE_BUFFER_S = 0.03


def main() -> None:
    thresholds = calibrated_thresholds("en-us")
    echo = coach(*ECHO_ROUTINE)
    total = recognized_n = wrong = 0
    latencies: list[float] = []
    cpu_s = audio_s = 0.0
    by_condition: dict[str, list[int]] = {}
    missed: Counter = Counter()
    for stream in command_streams(ENGINES, RATES, echo, first_seed=500):
        recognizer = Recognizer(thresholds)
        outcomes, cpu, feeds = run(recognizer, stream)
        cpu_s += cpu
        audio_s += len(stream.samples) / 16000
        hits, false = match(outcomes, stream.spoken)
        mean_feed = statistics.fmean(feeds)
        latencies += [hit.found_s - word.end_s + CAPTURE_BUFFER_S + mean_feed for word, hit in hits]
        total += len(stream.spoken)
        recognized_n += len(hits)
        wrong += len(false)
        said = stream.spoken[0]
        key = f"{said.engine} x{said.rate} {'noisy' if said.noisy else 'quiet'} {'echo' if said.echo else 'no echo'}"
        by_condition[key] = [len(hits), len(stream.spoken)]
        heard = {id(word) for word, _ in hits}
        missed.update(f"{w.phrase} ({w.engine})" for w in stream.spoken if id(w) not in heard)
        print(f"{key:<32} {len(hits)}/{len(stream.spoken)}, wrong actions {len(false)}", flush=True)
    quiet_false = 0
    quiet_s = 0.0
    for name, engine in QUIET_ROUTINES:
        stream = echo_stream(*coach(name, engine))
        outcomes, cpu, _ = run(Recognizer(thresholds), stream)
        taken = [o for o in outcomes if o.taken]
        quiet_false += len(taken)
        quiet_s += len(stream.samples) / 16000
        cpu_s += cpu
        audio_s += len(stream.samples) / 16000
        print(f"{name} ({engine}) echo alone, {len(stream.samples) / 16000 / 60:.1f} min: {len(taken)} actions "
              f"({', '.join(o.hit.phrase for o in taken) or 'none'}); echo filter dropped "
              f"{sum(1 for o in outcomes if o.reason == 'echo')}", flush=True)
    latencies.sort()
    p90 = latencies[int(0.9 * (len(latencies) - 1))] if latencies else float("nan")
    print()
    print(f"machine: {platform.machine()}, {platform.processor() or platform.platform()}, Python {platform.python_version()}")
    print(f"recognized: {recognized_n}/{total} = {100 * recognized_n / total:.1f} % (goal >= 95 %)")
    print(f"missed: {', '.join(f'{k} x{n}' for k, n in missed.most_common()) or 'none'}")
    print(f"wrong actions while commands were spoken: {wrong}")
    print(f"false actions on {quiet_s / 60:.1f} min of coach echo: {quiet_false} = "
          f"{quiet_false / (quiet_s / 3600):.1f} per hour (goal 0)")
    if latencies:
        print(f"latency end of word -> action: median {statistics.median(latencies):.2f} s, p90 {p90:.2f} s "
              f"(goal median <= 0.6 s)")
    print(f"CPU while listening: {100 * cpu_s / audio_s:.1f} % of one core (goal <= 20 %)")


if __name__ == "__main__":
    main()
