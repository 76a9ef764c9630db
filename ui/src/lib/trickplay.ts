// Trickplay previews: the server's WebVTT index names one tile of a sprite
// sheet per time range, as `sheet-N.jpg#xywh=x,y,w,h` (docs/streaming.md).

/** One preview tile: the time range it covers, in seconds, and where it sits in its sheet. */
export interface TrickplayTile {
  start: number;
  end: number;
  url: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

const CUE_TIMING = /^\s*((?:\d+:)?\d{1,2}:\d{2}\.\d{3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{2}\.\d{3})/;
const FRAGMENT = /#xywh=(\d+),(\d+),(\d+),(\d+)$/;

/** Parses a trickplay index; `indexUrl` resolves the sheet names. Cues it cannot read are skipped. */
export function parseTrickplay(text: string, indexUrl: string): TrickplayTile[] {
  const tiles: TrickplayTile[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  for (let index = 0; index < lines.length; index += 1) {
    const timing = CUE_TIMING.exec(lines[index]);
    if (!timing) continue;
    const target = (lines[index + 1] ?? "").trim();
    const fragment = FRAGMENT.exec(target);
    if (!fragment) continue;
    const url = new URL(target.replace(FRAGMENT, ""), new URL(indexUrl, location.href)).pathname;
    tiles.push({
      start: seconds(timing[1]),
      end: seconds(timing[2]),
      url,
      x: Number(fragment[1]),
      y: Number(fragment[2]),
      width: Number(fragment[3]),
      height: Number(fragment[4]),
    });
  }
  return tiles;
}

/** Returns the tile that covers `time` seconds, or null. */
export function tileAt(tiles: TrickplayTile[], time: number): TrickplayTile | null {
  return tiles.find((tile) => time >= tile.start && time < tile.end) ?? (tiles.length > 0 && time >= tiles[tiles.length - 1].end ? tiles[tiles.length - 1] : null);
}

function seconds(timestamp: string): number {
  const parts = timestamp.split(":").map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}
