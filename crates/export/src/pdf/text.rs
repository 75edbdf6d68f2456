//! Text as a PDF shows it: shaped by HarfRust (HarfBuzz's rules, so Arabic
//! letters join and take their contextual forms), ordered by the Unicode
//! bidirectional algorithm (so a right-to-left name reads right to left, and
//! digits or Latin words inside it keep their own direction), wrapped to a
//! width.

use std::cell::RefCell;
use std::collections::HashMap;

use harfrust::{Buffer, Direction, GlyphId, Script, ShapeOptions, ShapePlan, ShaperFont};
use unicode_bidi::{BidiInfo, Level};

/// DejaVu Sans covers Latin (with Azerbaijani's ə and Turkish's dotted and
/// dotless i), Greek, Cyrillic, Armenian, Georgian, Hebrew and Arabic, with
/// the OpenType tables Arabic shaping needs. It ships with the project
/// (`fonts/LICENSE`: the Bitstream Vera licence, which allows embedding).
static REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Regular,
    Bold,
}

impl Weight {
    pub(crate) const ALL: [Self; 2] = [Self::Regular, Self::Bold];

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A font face, parsed once.
pub(crate) struct Font {
    pub(crate) data: &'static [u8],
    /// The face as HarfRust (and read-fonts, under it) reads it: the
    /// successors of rustybuzz and ttf-parser, whose maintainers stopped.
    face: harfrust::Font,
    pub(crate) postscript_name: &'static str,
    units_per_em: f32,
    /// Font units above and below the baseline (the second negative), of a
    /// capital letter, and the box enclosing every glyph.
    pub(crate) ascender: f32,
    pub(crate) descender: f32,
    pub(crate) cap_height: f32,
    pub(crate) bounds: [f32; 4],
    /// Lines shaped lately: a table repeats its countries, cities, column
    /// titles and dates far more often than it meets new ones.
    shaped: RefCell<HashMap<(String, Option<bool>), Line>>,
    /// Shaping plans by direction and script: compiling one costs more than
    /// shaping a name with it.
    plans: RefCell<HashMap<(Direction, Option<Script>), ShapePlan>>,
}

/// How many shaped lines a font keeps before it starts again, and the
/// longest (in bytes) it keeps.
const REMEMBERED: usize = 2048;
const REMEMBER_UP_TO: usize = 40;

impl Font {
    pub(crate) fn load(weight: Weight) -> Self {
        let (data, postscript_name) = match weight {
            Weight::Regular => (REGULAR, "DejaVuSans"),
            Weight::Bold => (BOLD, "DejaVuSans-Bold"),
        };
        let face = harfrust::Font::new(data, 0).expect("the bundled font parses");
        let metrics = face.metrics();
        let units_per_em = f32::from(metrics.units_per_em);
        // As ttf-parser read them: the typographic line where the font asks
        // for it, else hhea's.
        let line = metrics
            .typo_line
            .filter(|_| metrics.use_typo_metrics)
            .or(metrics.hhea_line)
            .expect("the bundled font has line metrics");
        let (ascender, descender) = (
            line.ascender.to_f64() as f32,
            line.descender.to_f64() as f32,
        );
        let b = metrics.bounds;
        let bounds = [b.x_min, b.y_min, b.x_max, b.y_max].map(|v| v.to_f64() as f32);
        let cap_height = metrics.cap_height.map_or(ascender, |h| h.to_f64() as f32);
        Self {
            data,
            face,
            postscript_name,
            units_per_em,
            ascender,
            descender,
            cap_height,
            bounds,
            shaped: RefCell::default(),
            plans: RefCell::default(),
        }
    }

    /// Font units to thousandths of an em, PDF's glyph space.
    pub(crate) fn to_pdf(&self, units: f32) -> f32 {
        units * 1000.0 / self.units_per_em
    }

    /// How far the font's glyphs reach below and above the baseline, in
    /// thousandths of an em (the first negative).
    pub(crate) fn extent(&self) -> (f32, f32) {
        (self.to_pdf(self.descender), self.to_pdf(self.ascender))
    }

    /// The advance width PDF records for a glyph, in thousandths of an em.
    pub(crate) fn pdf_width(&self, glyph: u16) -> f32 {
        let advance = self
            .face
            .glyph_metrics()
            .h_advance(GlyphId::new(u32::from(glyph)));
        self.to_pdf(advance)
    }

    /// One line of text in the order it is drawn, left to right. `rtl` sets
    /// the paragraph's direction; `None` takes it from its first strong letter.
    pub(crate) fn line(&self, text: &str, rtl: Option<bool>) -> Line {
        // Long texts (names, e-mail addresses) are nearly all unique.
        if text.len() > REMEMBER_UP_TO {
            return self.shape_line(text, rtl);
        }
        let key = (text.to_owned(), rtl);
        if let Some(line) = self.shaped.borrow().get(&key) {
            return line.clone();
        }
        let line = self.shape_line(text, rtl);
        let mut shaped = self.shaped.borrow_mut();
        if shaped.len() >= REMEMBERED {
            shaped.clear();
        }
        shaped.insert(key, line.clone());
        line
    }

    fn shape_line(&self, text: &str, rtl: Option<bool>) -> Line {
        let mut glyphs = Vec::new();
        let paragraph_rtl;
        if text.is_ascii() && rtl != Some(true) {
            paragraph_rtl = false;
            self.shape(text, false, 0, &mut glyphs);
        } else {
            let level = rtl.map(|r| if r { Level::rtl() } else { Level::ltr() });
            let bidi = BidiInfo::new(text, level);
            paragraph_rtl = bidi.paragraphs.first().is_some_and(|p| p.level.is_rtl());
            for paragraph in &bidi.paragraphs {
                let (levels, runs) = bidi.visual_runs(paragraph, paragraph.range.clone());
                for run in runs {
                    let rtl = levels[run.start].is_rtl();
                    self.shape(&text[run.clone()], rtl, run.start, &mut glyphs);
                }
            }
        }
        let width = glyphs.iter().map(|g| g.advance).sum();
        Line {
            glyphs,
            width,
            rtl: paragraph_rtl,
        }
    }

    /// Shapes one directional run; glyphs come in drawing order, each with the
    /// byte offset (from `base`) of the characters it stands for.
    fn shape(&self, run: &str, rtl: bool, base: usize, out: &mut Vec<Glyph>) {
        let mut buffer = Buffer::new();
        buffer.push_str(run);
        buffer.set_direction(if rtl {
            Direction::RightToLeft
        } else {
            Direction::LeftToRight
        });
        buffer.guess_segment_properties();
        let key = (buffer.direction(), buffer.script());
        let mut plans = self.plans.borrow_mut();
        let plan = plans
            .entry(key)
            .or_insert_with(|| ShapePlan::new(&self.face, key.0, key.1, None, &[]));
        // Prepared from the font's cached layout tables: cheap to make.
        let font = ShaperFont::new(&self.face);
        harfrust::shape(&font, &mut buffer, ShapeOptions::new().plan(Some(plan)))
            .expect("a plan made for this buffer's direction and script");
        let infos = buffer.glyph_infos();
        let positions = buffer.glyph_positions();
        let first = out.len();
        for (info, position) in infos.iter().zip(positions) {
            let start = info.cluster as usize;
            // A cluster ends where the next one (in reading order) starts.
            let end = infos
                .iter()
                .map(|i| i.cluster as usize)
                .filter(|&c| c > start)
                .min()
                .unwrap_or(run.len());
            out.push(Glyph {
                id: info.glyph_id as u16,
                advance: self.to_pdf(position.x_advance as f32),
                dx: self.to_pdf(position.x_offset as f32),
                dy: self.to_pdf(position.y_offset as f32),
                text: base + start..base + end,
                rtl,
            });
        }
        self.share_clusters(&mut out[first..], run, base);
    }

    /// Where a cluster has several glyphs (a letter and its marks), each
    /// glyph stands for the characters it is the plain form of, and the first
    /// of the others for what is left, so that no glyph stands for text it
    /// does not show.
    fn share_clusters(&self, glyphs: &mut [Glyph], run: &str, base: usize) {
        let mut i = 0;
        while i < glyphs.len() {
            let cluster = glyphs[i].text.clone();
            let n = glyphs[i..].iter().take_while(|g| g.text == cluster).count();
            if n > 1 {
                let chars: Vec<(usize, char)> = run[cluster.start - base..cluster.end - base]
                    .char_indices()
                    .map(|(at, c)| (at + cluster.start, c))
                    .collect();
                let mut taken = vec![false; chars.len()];
                let mut plain = vec![None; n];
                for (g, slot) in glyphs[i..i + n].iter().zip(&mut plain) {
                    if let Some(k) = chars.iter().enumerate().position(|(k, (_, c))| {
                        !taken[k]
                            && self.face.charmap().map_unicode(*c).map(|id| id.to_u32())
                                == Some(u32::from(g.id))
                    }) {
                        taken[k] = true;
                        *slot = Some(k);
                    }
                }
                let rest: Vec<usize> = (0..chars.len()).filter(|&k| !taken[k]).collect();
                let mut rest_given = false;
                for (g, slot) in glyphs[i..i + n].iter_mut().zip(plain) {
                    g.text = match slot {
                        Some(k) => chars[k].0..chars[k].0 + chars[k].1.len_utf8(),
                        None if !rest_given && !rest.is_empty() => {
                            rest_given = true;
                            // What is left, up to the first character
                            // another glyph stands for.
                            let run_end = rest
                                .iter()
                                .zip(rest[0]..)
                                .take_while(|(k, want)| **k == *want)
                                .count();
                            let last = chars[rest[run_end - 1]];
                            chars[rest[0]].0..last.0 + last.1.len_utf8()
                        }
                        None => cluster.start..cluster.start,
                    };
                }
            }
            i += n;
        }
    }

    /// Splits a paragraph into lines no wider than `width` thousandths of an
    /// em, between words where it can, inside a word too long for a line.
    pub(crate) fn wrap<'t>(&self, text: &'t str, width: f32) -> Vec<&'t str> {
        if width <= 0.0 {
            return vec![text];
        }
        let mut lines = Vec::new();
        let mut start: Option<usize> = None;
        let mut end = 0;
        let space = self.line(" ", None).width;
        let mut used = 0.0;
        for (at, word) in words(text) {
            let mut at = at;
            let mut word = word;
            let mut wide = self.line(word, None).width;
            if start.is_some() && used + space + wide <= width {
                used += space + wide;
                end = at + word.len();
                continue;
            }
            if let Some(s) = start.take() {
                lines.push(&text[s..end]);
            }
            // A word wider than the line is cut where it still fits.
            while wide > width {
                let cut = self.fitting(word, width);
                lines.push(&word[..cut]);
                at += cut;
                word = &word[cut..];
                wide = self.line(word, None).width;
            }
            start = Some(at);
            end = at + word.len();
            used = wide;
        }
        if let Some(s) = start {
            lines.push(&text[s..end]);
        }
        if lines.is_empty() {
            lines.push("");
        }
        lines
    }

    /// The longest prefix of `word` (at least one character) that fits.
    fn fitting(&self, word: &str, width: f32) -> usize {
        let mut cut = word.chars().next().map_or(word.len(), char::len_utf8);
        for (i, c) in word.char_indices().skip(1) {
            if self.line(&word[..i + c.len_utf8()], None).width > width {
                break;
            }
            cut = i + c.len_utf8();
        }
        cut
    }
}

/// The words of a text with their byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(char::is_whitespace)
        .filter(|w| !w.is_empty())
        .map(move |w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
}

/// A glyph as drawn: its id in the font, how far it moves the pen and how far
/// it sits from the pen (thousandths of an em), and the text it stands for.
#[derive(Debug, Clone)]
pub(crate) struct Glyph {
    pub(crate) id: u16,
    pub(crate) advance: f32,
    pub(crate) dx: f32,
    pub(crate) dy: f32,
    pub(crate) text: std::ops::Range<usize>,
    /// Drawn in a right-to-left run.
    pub(crate) rtl: bool,
}

impl Glyph {
    /// The characters the glyph stands for, in the order a reader lays them
    /// out across it: left to right, so a right-to-left ligature's (Arabic
    /// lam-alef) come reversed, and a reader that orders the text by position
    /// reads them back in their logical order.
    pub(crate) fn chars(&self, line: &str) -> String {
        let text = &line[self.text.clone()];
        if self.rtl {
            text.chars().rev().collect()
        } else {
            text.to_owned()
        }
    }
}

/// A shaped line, in drawing order.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) glyphs: Vec<Glyph>,
    /// Thousandths of an em.
    pub(crate) width: f32,
    /// Its paragraph reads right to left (align it right).
    pub(crate) rtl: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nominal(font: &Font, c: char) -> u16 {
        let id = font
            .face
            .charmap()
            .map_unicode(c)
            .expect("the font has the letter");
        u16::try_from(id.to_u32()).expect("DejaVu has fewer than 65,536 glyphs")
    }

    #[test]
    fn arabic_letters_join_and_read_right_to_left() {
        let font = Font::load(Weight::Regular);
        // "محمد": meem, hah, meem, dal.
        let text = "محمد";
        let line = font.line(text, None);
        assert!(line.rtl);
        assert_eq!(line.glyphs.len(), 4);
        // Drawn left to right, the last letter comes first.
        let drawn: Vec<&str> = line.glyphs.iter().map(|g| &text[g.text.clone()]).collect();
        assert_eq!(drawn, ["د", "م", "ح", "م"]);
        // Joined letters take their contextual forms, not the isolated ones:
        // the first meem its initial form, the hah its medial form.
        assert_ne!(line.glyphs[3].id, nominal(&font, 'م'));
        assert_ne!(line.glyphs[2].id, nominal(&font, 'ح'));
        assert!(line.width > 0.0);
    }

    #[test]
    fn numbers_and_latin_inside_arabic_keep_their_direction() {
        let font = Font::load(Weight::Regular);
        let text = "شارع 12 Main";
        let line = font.line(text, None);
        assert!(line.rtl);
        let drawn: String = line.glyphs.iter().map(|g| &text[g.text.clone()]).collect();
        // Visual order: "Main", then "12", then the Arabic word, each run in
        // its own direction.
        assert_eq!(drawn, "Main 12 عراش");
    }

    #[test]
    fn latin_cyrillic_and_azerbaijani_have_glyphs() {
        let font = Font::load(Weight::Regular);
        for text in [
            "Zoë Ørsted",
            "Ґалина Іваненко",
            "Əliyev İlkin ığ",
            "Şükrü Iğdır",
        ] {
            let line = font.line(text, None);
            assert!(!line.rtl);
            assert!(
                line.glyphs.iter().all(|g| g.id != 0),
                "{text} has a missing glyph"
            );
        }
    }

    #[test]
    fn a_mark_and_its_letter_each_stand_for_their_own_character() {
        let font = Font::load(Weight::Regular);
        // Beh with a fatha, then a Latin e with a combining acute accent.
        for text in ["بَ", "e\u{301}"] {
            let line = font.line(text, None);
            let mut read: Vec<String> = line.glyphs.iter().map(|g| g.chars(text)).collect();
            read.sort();
            let mut want: Vec<String> = text.chars().map(String::from).collect();
            want.sort();
            if line.glyphs.len() == want.len() {
                assert_eq!(read, want, "{text}");
            } else {
                // Composed into one glyph: it stands for both.
                assert_eq!(read.concat().chars().count(), want.len(), "{text}");
            }
        }
        // What the font lacks is drawn with the missing glyph.
        assert!(font.line("王", None).glyphs.iter().all(|g| g.id == 0));
    }

    #[test]
    fn wrapping_breaks_between_words_and_inside_long_ones() {
        let font = Font::load(Weight::Regular);
        let text = "one two three four five six";
        let width = font.line("one two three", None).width;
        assert_eq!(font.wrap(text, width), ["one two three", "four five six"]);
        let long = "abcdefghijklmnopqrstuvwxyz";
        let narrow = font.line("abcdefgh", None).width;
        let lines = font.wrap(long, narrow);
        assert!(lines.len() > 2, "{lines:?}");
        assert_eq!(lines.concat(), long);
        for line in &lines {
            assert!(font.line(line, None).width <= narrow);
        }
        assert_eq!(font.wrap("", 100.0), [""]);
    }
}
