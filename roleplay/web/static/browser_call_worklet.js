// The call's audio in the browser (an AudioWorklet; the deprecated ScriptProcessor is not used).
// One process() call records the microphone and plays the caller on the audio context's clock,
// counted in 16 kHz samples: microphone sample n and output sample n belong to the same moment,
// so the server puts both on one timeline as it does with a sound card (roleplay/audio/browserstream.py).
// Microphone: low-pass (windowed sinc, 7 kHz) and resampled to 16 kHz PCM16, posted in numbered
// frames of 320 samples. Output: chunks from the server (start sample + samples) are played when
// the clock reaches their start; a chunk that comes after its time is dropped and reported ("late").
"use strict";

const RATE = 16000;
const FRAME = 320;
const RING = RATE * 30; // output samples held ahead of the clock
const TAPS = 31;

function lowPass(ratio) {
  // cutoff 7 kHz at the context's rate (44.1 or 48 kHz): under 16 kHz's Nyquist frequency
  const fc = 7000 / (RATE * ratio);
  const h = new Float32Array(TAPS);
  const mid = (TAPS - 1) / 2;
  let sum = 0;
  for (let i = 0; i < TAPS; i++) {
    const x = i - mid;
    const sinc = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
    const hann = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (TAPS - 1));
    h[i] = sinc * hann;
    sum += h[i];
  }
  for (let i = 0; i < TAPS; i++) { h[i] /= sum; }
  return h;
}

class RoleplayCall extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / RATE; // context frames per 16 kHz sample
    this.h = lowPass(this.ratio);
    this.delay = new Float32Array(TAPS);
    this.tap = 0;
    this.frames = 0; // context frames processed (the clock)
    this.prev = 0; // the filtered sample before the current one
    this.next16 = 0; // index of the next 16 kHz microphone sample
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
    this.seq = 0;
    this.out = new Float32Array(RING);
    this.played16 = 0; // 16 kHz output samples whose time has passed
    this.written = 0; // end of the output received
    this.port.onmessage = (event) => this.message(event.data);
  }

  message(data) {
    if (data.type === "audio") {
      const samples = data.samples;
      let late = 0;
      for (let i = 0; i < samples.length; i++) {
        const k = data.start + i;
        if (k < this.played16) { if (samples[i] !== 0) { late++; } continue; }  // late silence is no loss
        if (k >= this.played16 + RING) { break; }
        this.out[k % RING] = samples[i] / 32768;
        this.written = Math.max(this.written, k + 1);
      }
      if (late) { this.port.postMessage({ type: "late", samples: late }); }
    } else if (data.type === "stop") {
      // the caller stopped: nothing from `from` on is played (what already played stays played)
      for (let k = Math.max(data.from, this.played16); k < this.written; k++) {
        this.out[k % RING] = 0;
      }
    }
  }

  microphone(x) {
    // filter at the context's rate, then take the 16 kHz samples that fall in [i-1, i]
    this.delay[this.tap] = x;
    let y = 0;
    for (let j = 0; j < TAPS; j++) { y += this.h[j] * this.delay[(this.tap + TAPS - j) % TAPS]; }
    this.tap = (this.tap + 1) % TAPS;
    const i = this.frames;
    while (this.next16 * this.ratio <= i) {
      const t = this.next16 * this.ratio - (i - 1);
      const v = this.prev + t * (y - this.prev);
      this.frame[this.filled++] = Math.max(-32768, Math.min(32767, Math.round(v * 32767)));
      this.next16++;
      if (this.filled === FRAME) {
        this.port.postMessage({ type: "frame", seq: this.seq++, pcm: this.frame.buffer }, [this.frame.buffer]);
        this.frame = new Int16Array(FRAME);
        this.filled = 0;
      }
    }
    this.prev = y;
  }

  speaker() {
    // output sample at this context frame: between 16 kHz samples k and k+1
    const t = this.frames / this.ratio;
    const k = Math.floor(t);
    while (this.played16 < k) { this.out[this.played16 % RING] = 0; this.played16++; }
    const a = this.out[k % RING];
    const b = this.out[(k + 1) % RING];
    return a + (t - k) * (b - a);
  }

  process(inputs, outputs) {
    const input = inputs[0] && inputs[0][0];
    const output = outputs[0][0];
    for (let i = 0; i < output.length; i++) {
      this.microphone(input ? input[i] : 0);
      output[i] = this.speaker();
      this.frames++;
    }
    for (let c = 1; c < outputs[0].length; c++) { outputs[0][c].set(output); }
    return true;
  }
}

registerProcessor("roleplay-call", RoleplayCall);
