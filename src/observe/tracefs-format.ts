/**
 * tracefs' self-description, parsed (pure: text in, layout out): an event's `format` file (its
 * fields' offsets and sizes in the binary record, the labels and symbol tables of its text form),
 * `events/header_page` (a ring-buffer page's header: time stamp, commit, data) and
 * `events/header_event` (the compressed record header: type_len and time_delta bits, the special
 * types). The binary reader (tracefs-raw.ts) takes every offset from here, none is assumed.
 */

export interface EventField {
  /** C type as the format file states it, e.g. "__u16" or "__u8 saddr[4]"'s "__u8". */
  type: string;
  name: string;
  offset: number;
  size: number;
  signed: boolean;
}

export interface EventFormat {
  name: string;
  id: number;
  /** Event-specific fields (the common_* header fields are in `common`). */
  fields: EventField[];
  /** The common_* fields every record starts with (common_type, common_pid, ...). */
  common: EventField[];
  /** The labels the text output prints, in order ("family", "sport", "saddrv6", ...). */
  labels: string[];
  /** For each field printed through __print_symbolic: its value -> name table (e.g. 7 -> TCP_CLOSE). */
  symbols: Map<string, Map<number, string>>;
}

const FIELD_RE = /field:([^;]*?)\s+(\w+)(\[\d*\])?;\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/g;

function fieldsOf(text: string): EventField[] {
  return [...text.matchAll(FIELD_RE)].map((m) => ({
    type: m[1]!.trim(),
    name: m[2]!,
    offset: Number(m[4]),
    size: Number(m[5]),
    signed: m[6] === '1',
  }));
}

/** Parse a tracefs `format` file. */
export function parseEventFormat(text: string): EventFormat {
  const name = /^name:\s*(\S+)/m.exec(text)?.[1];
  const id = /^ID:\s*(\d+)/m.exec(text)?.[1];
  if (!name || !id) throw new Error('not a tracefs event format (no name/ID)');
  const all = fieldsOf(text);
  const fmt = /^print fmt:\s*"((?:[^"\\]|\\.)*)"(.*)$/m.exec(text);
  const labels = fmt ? [...fmt[1]!.matchAll(/(\w+)=%/g)].map((m) => m[1]!) : [];
  const symbols = new Map<string, Map<number, string>>();
  const args = fmt?.[2] ?? '';
  for (const m of args.matchAll(
    /__print_symbolic\(REC->(\w+),((?:\s*\{\s*-?\d+\s*,\s*"[^"]*"\s*\},?)+)\)/g,
  )) {
    const table = new Map<number, string>();
    for (const e of m[2]!.matchAll(/\{\s*(-?\d+)\s*,\s*"([^"]*)"\s*\}/g)) table.set(Number(e[1]), e[2]!);
    symbols.set(m[1]!, table);
  }
  return {
    name,
    id: Number(id),
    fields: all.filter((f) => !f.name.startsWith('common_')),
    common: all.filter((f) => f.name.startsWith('common_')),
    labels,
    symbols,
  };
}

/** A ring-buffer page ("sub-buffer") as `events/header_page` describes it. */
export interface PageHeader {
  /** u64 time stamp of the page's first event. */
  timestamp: { offset: number; size: number };
  /** local_t: bytes of data committed, plus flag bits (missed events) above them. */
  commit: { offset: number; size: number };
  /** Where the records start, and how many bytes they may take. */
  data: { offset: number; size: number };
  /** Bytes of one page as trace_pipe_raw hands it out: data.offset + data.size. */
  pageSize: number;
}

/** Parse `events/header_page`. */
export function parseHeaderPage(text: string): PageHeader {
  const byName = new Map(
    [...text.matchAll(/field:\s*([^;]*?)\s+(\w+);\s*offset:(\d+);\s*size:(\d+);/g)].map((m) => [
      m[2]!,
      { offset: Number(m[3]), size: Number(m[4]) },
    ]),
  );
  const timestamp = byName.get('timestamp');
  const commit = byName.get('commit');
  const data = byName.get('data');
  if (!timestamp || !commit || !data) throw new Error('not a tracefs header_page (timestamp, commit, data)');
  if (timestamp.size !== 8 || (commit.size !== 8 && commit.size !== 4))
    throw new Error(
      `tracefs header_page: unexpected sizes (timestamp ${timestamp.size}, commit ${commit.size})`,
    );
  return { timestamp, commit, data, pageSize: data.offset + data.size };
}

/** The compressed record header as `events/header_event` describes it. */
export interface EventHeader {
  typeLenBits: number;
  timeDeltaBits: number;
  /** type_len values of the special records. */
  padding: number;
  timeExtend: number;
  /** Absolute time stamp record; -1 on kernels without one. */
  timeStamp: number;
  /** type_len 1..dataMax: data of type_len * 4 bytes; 0: length in the next 32-bit word. */
  dataMax: number;
}

/** Parse `events/header_event`. */
export function parseHeaderEvent(text: string): EventHeader {
  const bits = (name: string): number | undefined => {
    const m = new RegExp(`^\\s*${name}\\s*:\\s*(\\d+)\\s*bits`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const type = (name: string): number | undefined => {
    const m = new RegExp(`^\\s*${name}\\s*:\\s*type\\s*==\\s*(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const typeLenBits = bits('type_len');
  const timeDeltaBits = bits('time_delta');
  const padding = type('padding');
  const timeExtend = type('time_extend');
  const dataMax = Number(/data max type_len\s*==\s*(\d+)/.exec(text)?.[1] ?? NaN);
  if (
    typeLenBits === undefined ||
    timeDeltaBits === undefined ||
    typeLenBits + timeDeltaBits !== 32 ||
    padding === undefined ||
    timeExtend === undefined ||
    !Number.isFinite(dataMax)
  )
    throw new Error('not a tracefs header_event (type_len, time_delta, padding, time_extend)');
  return { typeLenBits, timeDeltaBits, padding, timeExtend, timeStamp: type('time_stamp') ?? -1, dataMax };
}
