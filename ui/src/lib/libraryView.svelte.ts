// The library's search, filter and sort choices, kept while the person
// visits item pages, so going back shows the same view.

import type { MediaKind, SortKey, SortOrder } from "../api/types";

export const libraryView = $state<{ q: string; kind: MediaKind | ""; year: number | null; genre: string; sort: SortKey; order: SortOrder }>({
  q: "",
  kind: "",
  year: null,
  genre: "",
  sort: "title",
  order: "asc",
});
