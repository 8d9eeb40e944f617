import type { TaskContext } from "./executor.ts";

/**
 * A target as data: the path an agent requests on an iteration is `paths[key % paths.length]`, the key
 * being its agent index, its iteration, or their sum. What a target function would compute, in a form
 * that can cross a thread or a machine.
 */
export type PathTable = { paths: readonly string[]; by: "agent" | "iteration" | "agent+iteration" };

/** The path of one iteration: a fixed path, or a {@link PathTable} entry. */
export function pathOf(target: string | PathTable, { agent, iteration }: TaskContext): string {
  if (typeof target === "string") return target;
  const key = target.by === "agent" ? agent : target.by === "iteration" ? iteration : agent + iteration;
  return target.paths[key % target.paths.length] as string;
}
