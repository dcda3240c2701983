import { readFileSync } from "node:fs";

/**
 * How much of the machine processes outside the benchmark used while a scenario ran. The machine has 2
 * cores and the bench needs both (load generator + server), so anything else running — a test suite, a
 * build — lowers the figures; this makes such a run recognisable instead of silently wrong.
 *
 * other = (busy jiffies of the whole machine − CPU of this process, its waited-for children (h2load, the
 * raw loops) and the live servers given) / all jiffies. Kernel softirq work for loopback traffic is charged
 * to no process, so a quiet run still shows a few percent.
 */
export class ForeignCpu {
  private constructor(
    private readonly servers: readonly number[],
    private readonly machine0: { busy: number; total: number },
    private readonly ours0: number,
  ) {}

  static start(serverPids: readonly (number | undefined)[] = []): ForeignCpu {
    const pids = serverPids.filter((p): p is number => p !== undefined);
    return new ForeignCpu(pids, machineJiffies(), oursJiffies(pids));
  }

  /** Fraction (0..1) of the machine's capacity used by other processes since start. */
  stop(): number {
    const m = machineJiffies();
    const total = m.total - this.machine0.total;
    if (total <= 0) return 0;
    const foreign = m.busy - this.machine0.busy - (oursJiffies(this.servers) - this.ours0);
    return Math.min(1, Math.max(0, foreign / total));
  }
}

/** Busy and total jiffies of the whole machine since boot (all cores; /proc/stat's first line). */
export function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  // cpu  user nice system idle iowait irq softirq steal ...
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** utime+stime (+ cutime+cstime for this process: its finished children) in jiffies. */
function oursJiffies(servers: readonly number[]): number {
  let sum = procJiffies("self", true);
  for (const pid of servers) sum += procJiffies(String(pid), false);
  return sum;
}

function procJiffies(pid: string, withChildren: boolean): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0; // the server exited; its time then shows in our cutime/cstime
  }
  // Fields after the ")" that closes the command name: state is field 3, utime 14 … cstime 17.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const [utime, stime, cutime, cstime] = [f[11]!, f[12]!, f[13]!, f[14]!];
  return utime + stime + (withChildren ? cutime + cstime : 0);
}
