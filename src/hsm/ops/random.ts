import type { Device } from "../runtime/device.js";

/** One device RNG call serves this many bytes of nonces (341 AES-GCM IVs). */
const NONCE_BLOCK_BYTES = 4096;

/**
 * The device's random number generator: GenerateRandom, and nonces (AES-GCM IVs) handed out from a block of
 * device bytes, so a nonce costs one device call per 341 encryptions rather than one each.
 */
export class RandomSource {
  /** Device random bytes not yet handed out as nonces (public values: IVs). */
  private block: Buffer = Buffer.alloc(0);
  private offset = 0;

  constructor(private readonly device: Device) {}

  async generateRandom(length: number): Promise<Buffer> {
    return this.device.run("generate random", (s) => this.device.mod.C_GenerateRandom(s, Buffer.allocUnsafe(length)), undefined, "RNG");
  }

  async nonce(length: number): Promise<Buffer> {
    if (length > NONCE_BLOCK_BYTES) return this.generateRandom(length);
    if (this.offset + length > this.block.length) {
      // Concurrent refills are harmless: each replaces the block with fresh device bytes and resets the
      // offset, and a slice is only ever taken by advancing the offset, so no byte is handed out twice.
      this.block = await this.generateRandom(NONCE_BLOCK_BYTES);
      this.offset = 0;
    }
    const start = this.offset;
    this.offset += length;
    return this.block.subarray(start, start + length);
  }
}
