import { describe, expect, it } from "vitest";
import { Metrics } from "../../src/observability/metrics.js";

describe("HSM metrics", () => {
  it("records device call durations by key store, operation and mechanism", async () => {
    const m = new Metrics();
    const observe = m.hsmObserver("default");
    observe("encrypt", "AES_GCM", 0.00002);
    observe("encrypt", "AES_GCM", 0.00003);
    observe("sign", "ECDSA", 0.0004);
    const text = await m.registry.metrics();
    expect(text).toContain('p11kms_hsm_call_duration_seconds_count{key_store="default",operation="encrypt",mechanism="AES_GCM"} 2');
    expect(text).toContain('p11kms_hsm_call_duration_seconds_bucket{le="0.000025",key_store="default",operation="encrypt",mechanism="AES_GCM"} 1');
    expect(text).toContain('p11kms_hsm_call_duration_seconds_count{key_store="default",operation="sign",mechanism="ECDSA"} 1');
  });

  it("reads session pool use at scrape time, and nothing for a store that is not connected", async () => {
    const m = new Metrics();
    let usage: { open: number; idle: number; waiting: number; copies: number } | undefined = { open: 5, idle: 2, waiting: 3, copies: 7 };
    m.watchPool("a", () => usage);
    let text = await m.registry.metrics();
    expect(text).toContain('p11kms_hsm_sessions{key_store="a",state="in_use"} 3');
    expect(text).toContain('p11kms_hsm_sessions{key_store="a",state="idle"} 2');
    expect(text).toContain('p11kms_hsm_session_waiters{key_store="a"} 3');
    expect(text).toContain('p11kms_hsm_session_key_copies{key_store="a"} 7');
    usage = undefined;
    text = await m.registry.metrics();
    expect(text).not.toContain('p11kms_hsm_sessions{key_store="a"');
  });

  it("reads the device thread's counters from the registered callback at scrape time, 0 when none is registered", async () => {
    const m = new Metrics();
    let text = await m.registry.metrics();
    expect(text).toMatch(/^p11kms_device_thread_calls_total 0$/m);
    expect(text).toMatch(/^p11kms_device_thread_messages_total 0$/m);
    let stats = { calls: 48, messages: 3 };
    m.watchDeviceThread(() => stats);
    text = await m.registry.metrics();
    expect(text).toMatch(/^p11kms_device_thread_calls_total 48$/m);
    expect(text).toMatch(/^p11kms_device_thread_messages_total 3$/m);
    stats = { calls: 50, messages: 5 };
    text = await m.registry.metrics();
    expect(text).toMatch(/^p11kms_device_thread_calls_total 50$/m);
    expect(text).toMatch(/^p11kms_device_thread_messages_total 5$/m);
  });
});
