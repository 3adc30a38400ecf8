// Beacon-API JSON as a real consensus client writes it, for
// eth/tests/spec_reference.rs. Reads the executable spec's reference cases
// (argv[2]), and for each case up to Capella of the preset Lodestar was loaded
// with (LODESTAR_PRESET) decodes the case's SSZ with Lodestar's types and
// adds Lodestar's SSZ, JSON (`toJson`, the beacon-API form) and root.
// Lodestar keeps uint64 slots and epochs as JS numbers and writes them in
// JSON as JS prints them, so values above 2^53 are brought below it first;
// Lodestar's own SSZ of that value is what the Rust side decodes.
// Lodestar 1.5.1 knows forks up to Capella; later forks are not asked.
import {readFileSync} from "node:fs";
import {ssz} from "@lodestar/types";

const preset = process.env.LODESTAR_PRESET;
if (preset !== "mainnet" && preset !== "minimal") {
  throw new Error("set LODESTAR_PRESET to mainnet or minimal");
}
// Oldest first: a container is the newest definition at or before its fork.
const FORKS = ["phase0", "altair", "bellatrix", "capella"];

function lodestarType(name, fork) {
  for (let at = FORKS.indexOf(fork); at >= 0; at--) {
    if (ssz[FORKS[at]][name]) return ssz[FORKS[at]][name];
  }
  return null;
}

/** Brings every number above 2^53 (or infinite) below it, in place. */
function jsSafe(value) {
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return value;
  for (const key of Object.keys(value)) {
    const field = value[key];
    if (typeof field === "number" && !Number.isSafeInteger(field)) {
      value[key] = Number.isFinite(field) ? field % 2 ** 53 : 2 ** 53 - 1;
    } else {
      jsSafe(field);
    }
  }
  return value;
}

const hex = (bytes) => "0x" + Buffer.from(bytes).toString("hex");
const reference = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = [];
const missing = new Set();
for (const c of reference.cases) {
  if (c.preset !== preset || !FORKS.includes(c.fork)) continue;
  const type = lodestarType(c.container, c.fork);
  if (!type) {
    missing.add(`${c.fork} ${c.container}`);
    continue;
  }
  const value = jsSafe(type.deserialize(Buffer.from(c.ssz.slice(2), "hex")));
  out.push({
    preset,
    fork: c.fork,
    container: c.container,
    ssz: hex(type.serialize(value)),
    json: type.toJson(value),
    root: hex(type.hashTreeRoot(value)),
  });
}
if (missing.size > 0) {
  throw new Error(`no Lodestar type for ${[...missing].join(", ")}`);
}
process.stdout.write(JSON.stringify({generator: "lodestar 1.5.1", cases: out}));
