// A small Markdown subset rendered to DOM nodes, never to an HTML string: whatever a note contains
// (<script>, <img onerror>, javascript: links) stays text, because every character reaches the page
// through text nodes and the only attributes set are checked hrefs.
//
// Blocks: # to ### headings, paragraphs (a blank line ends one), "- " / "* " and "1. " lists,
// ``` fenced code, "> " quotes. Inline: `code`, **bold**, *italic* / _italic_, [text](url) with
// http(s), mailto or same-site URLs only.
import { h } from "./dom.js";

// `_` emphasis only between word boundaries, so snake_case option names stay as written.
const INLINE = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*|(?<!\w)_[^_\s][^_]*_(?!\w))|(\[[^\]]+\]\([^)\s]+\))/;

export function safeHref(url) {
  const trimmed = url.trim();
  if (/^(https?:|mailto:)/i.test(trimmed)) return trimmed;
  // Same-site paths (/runs/abc) and fragments; "//host" would leave the site with the page's scheme.
  if (/^\/(?!\/)/.test(trimmed) || trimmed.startsWith("#")) return trimmed;
  return null;
}

export function inline(text) {
  const nodes = [];
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      nodes.push(rest);
      break;
    }
    if (match.index) nodes.push(rest.slice(0, match.index));
    const [token, code, bold, italic, link] = match;
    if (code) nodes.push(h("code", {}, code.slice(1, -1)));
    else if (bold) nodes.push(h("strong", {}, inline(bold.slice(2, -2))));
    else if (italic) nodes.push(h("em", {}, inline(italic.slice(1, -1))));
    else if (link) {
      const [, label, url] = /^\[([^\]]+)\]\(([^)\s]+)\)$/.exec(link);
      const href = safeHref(url);
      nodes.push(href ? h("a", { href, rel: "noopener noreferrer nofollow", target: href.startsWith("/") || href.startsWith("#") ? null : "_blank" }, inline(label)) : token);
    }
    rest = rest.slice(match.index + token.length);
  }
  return nodes;
}

/** The DOM nodes of `source` (Markdown subset above), in a fragment ready to append. */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  const lines = String(source || "").replace(/\r\n?/g, "\n").split("\n");
  let paragraph = [];
  let list = null;
  const flushParagraph = () => {
    if (paragraph.length) fragment.append(h("p", {}, inline(paragraph.join(" "))));
    paragraph = [];
  };
  const flushList = () => {
    if (list) fragment.append(list);
    list = null;
  };
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (line.startsWith("```")) {
      flushParagraph();
      flushList();
      const code = [];
      for (i += 1; i < lines.length && !lines[i].startsWith("```"); i += 1) code.push(lines[i]);
      fragment.append(h("pre", { class: "md-code" }, h("code", {}, code.join("\n"))));
      continue;
    }
    const heading = /^(#{1,3})\s+(.*)$/.exec(line);
    const bullet = /^\s*[-*]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    const quote = /^>\s?(.*)$/.exec(line);
    if (!line.trim()) {
      flushParagraph();
      flushList();
    } else if (heading) {
      flushParagraph();
      flushList();
      // Notes sit under the page's h2 "Notes": their headings start one level below it.
      fragment.append(h(`h${Math.min(6, heading[1].length + 2)}`, {}, inline(heading[2])));
    } else if (bullet || numbered) {
      flushParagraph();
      const tag = bullet ? "ul" : "ol";
      if (list && list.tagName.toLowerCase() !== tag) flushList();
      list = list || h(tag);
      list.append(h("li", {}, inline((bullet || numbered)[1])));
    } else if (quote) {
      flushParagraph();
      flushList();
      fragment.append(h("blockquote", {}, inline(quote[1])));
    } else {
      flushList();
      paragraph.push(line.trim());
    }
  }
  flushParagraph();
  flushList();
  return fragment;
}
