/**
 * A small seeded generator (mulberry32) so that every model run is reproducible from its seed.
 * The kernel's own randomness (get_random_u32_below, the secret in secure_ipv4_port_ephemeral,
 * the table_perturb contents) is drawn from here.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in [0, n): the model's get_random_u32_below(n). */
  below(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }
}
