//! A PDF written front to back: each page leaves as soon as it is drawn, and
//! what can only be written at the end (the embedded font subsets, the page
//! tree, the cross-reference table) comes after the last page. What stays in
//! memory is one offset per object, one reference per page and the glyphs
//! used, so a million signatures (some 20,000 pages) need a few hundred KB.
//!
//! pdf-writer writes the objects; this file numbers them, keeps their offsets
//! and writes the cross-reference table and trailer itself, because
//! pdf-writer's `Pdf` holds the whole file until it finishes.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::writers::{Catalog, DocumentInfo};
use pdf_writer::{Chunk, Content, Date, Filter, Finish, Name, Rect, Ref, Str, TextStr};
use sha2::{Digest, Sha256};
use subsetter::GlyphRemapper;

use super::text::{Font, Glyph, Line, Weight};

/// A4 portrait, in points.
pub(crate) const PAGE: (f32, f32) = (595.0, 842.0);

const CATALOG: Ref = Ref::new(1);
const PAGE_TREE: Ref = Ref::new(2);
const INFO: Ref = Ref::new(3);
/// Each font takes five objects from here: Type0, CIDFont, descriptor, font
/// file, ToUnicode map.
const FONTS: i32 = 4;
const FIRST_FREE: i32 = FONTS + 5 * Weight::ALL.len() as i32;

fn font_name(weight: Weight) -> Name<'static> {
    match weight {
        Weight::Regular => Name(b"R"),
        Weight::Bold => Name(b"B"),
    }
}

/// A font as this document uses it: which glyphs (numbered in the subset in
/// the order first drawn) and the text each stands for.
struct FontUse {
    font: Font,
    glyphs: GlyphRemapper,
    text: BTreeMap<u16, String>,
}

impl FontUse {
    /// The glyph's number in the subset; the first text seen for it is what
    /// a reader copies. The missing glyph (0) stands for no text: it is drawn
    /// for whatever the font lacks.
    fn note(&mut self, glyph: &Glyph, line: &str) -> u16 {
        let id = self.glyphs.remap(glyph.id);
        if id != 0 && !glyph.text.is_empty() {
            self.text.entry(id).or_insert_with(|| glyph.chars(line));
        }
        id
    }
}

pub(crate) struct Document {
    /// Bytes ready to leave.
    out: Vec<u8>,
    /// Bytes that have left before `out`.
    sent: u64,
    /// Each object's offset, by number - 1.
    offsets: Vec<u64>,
    pages: Vec<Ref>,
    fonts: Vec<FontUse>,
    title: String,
    created: chrono::DateTime<chrono::Utc>,
    /// The file identifier's seed: the export's id.
    id: uuid::Uuid,
}

impl Document {
    pub(crate) fn new(
        title: String,
        created: chrono::DateTime<chrono::Utc>,
        id: uuid::Uuid,
    ) -> Self {
        let mut out = Vec::with_capacity(1 << 16);
        // A binary comment tells transfer programs the file is binary.
        out.extend_from_slice(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
        Self {
            out,
            sent: 0,
            offsets: vec![0; FIRST_FREE as usize - 1],
            pages: Vec::new(),
            fonts: Weight::ALL
                .iter()
                .map(|&w| FontUse {
                    font: Font::load(w),
                    glyphs: GlyphRemapper::new(),
                    text: BTreeMap::new(),
                })
                .collect(),
            title,
            created,
            id,
        }
    }

    pub(crate) fn font(&self, weight: Weight) -> &Font {
        &self.fonts[weight.index()].font
    }

    /// What is ready to leave; the document goes on.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.sent += self.out.len() as u64;
        std::mem::take(&mut self.out)
    }

    pub(crate) fn pages(&self) -> usize {
        self.pages.len()
    }

    fn allocate(&mut self) -> Ref {
        self.offsets.push(0);
        Ref::new(self.offsets.len() as i32)
    }

    /// Writes a chunk holding the single object `id`.
    fn object(&mut self, id: Ref, chunk: &Chunk) {
        self.offsets[id.get() as usize - 1] = self.sent + self.out.len() as u64;
        self.out.extend_from_slice(chunk.as_bytes());
    }

    /// Draws `line` (shaped from `text`) at `size` points with its left end
    /// at `[x, y]`.
    pub(crate) fn show(
        &mut self,
        content: &mut Content,
        font: (Weight, f32),
        origin: [f32; 2],
        text: &str,
        line: &Line,
    ) {
        self.show_within(content, font, origin, text, line, None);
    }

    /// [`show`](Self::show), leaving out the raised glyphs (marks set above
    /// or below their letter) that reach out of the band between `bottom` and
    /// `top` (points from the page's foot): a clipping path hides them from
    /// the eye, but text extractors read what is clipped, and a name of
    /// stacked marks would read into the rows around it.
    pub(crate) fn show_within(
        &mut self,
        content: &mut Content,
        (weight, size): (Weight, f32),
        [x, y]: [f32; 2],
        text: &str,
        line: &Line,
        band: Option<[f32; 2]>,
    ) {
        let used = &mut self.fonts[weight.index()];
        let (descent, ascent) = used.font.extent();
        let outside = |glyph: &Glyph| {
            band.is_some_and(|[bottom, top]| {
                let rise = y + glyph.dy * size / 1000.0;
                rise + descent * size / 1000.0 < bottom || rise + ascent * size / 1000.0 > top
            })
        };
        content.begin_text();
        content.set_font(font_name(weight), size);
        content.set_text_matrix([1.0, 0.0, 0.0, 1.0, x, y]);
        let mut glyphs = line.glyphs.iter().peekable();
        while glyphs.peek().is_some() {
            let mut shown = content.show_positioned();
            let mut items = shown.items();
            let mut raised = None;
            for glyph in glyphs.by_ref() {
                if glyph.dy != 0.0 {
                    raised = Some(glyph);
                    break;
                }
                let id = used.note(glyph, text);
                // TJ moves the pen by the font's width less the number after
                // the glyph: this puts the glyph at its offset and moves the
                // pen by the shaped advance.
                let width = used.font.pdf_width(glyph.id);
                if glyph.dx != 0.0 {
                    items.adjust(-glyph.dx);
                }
                items.show(Str(&id.to_be_bytes()));
                let after = width - glyph.advance + glyph.dx;
                if after.abs() > 0.01 {
                    items.adjust(after);
                }
            }
            items.finish();
            shown.finish();
            // A mark above or below its letter (Arabic vowels) is shown on
            // its own, raised by its offset.
            if let Some(glyph) = raised.filter(|g| outside(g)) {
                // Left out; the pen still moves by its advance.
                if glyph.advance != 0.0 {
                    content.show_positioned().items().adjust(-glyph.advance);
                }
            } else if let Some(glyph) = raised {
                let id = used.note(glyph, text);
                let width = used.font.pdf_width(glyph.id);
                content.set_rise(glyph.dy * size / 1000.0);
                let mut shown = content.show_positioned();
                let mut items = shown.items();
                if glyph.dx != 0.0 {
                    items.adjust(-glyph.dx);
                }
                items.show(Str(&id.to_be_bytes()));
                items.adjust(width - glyph.advance + glyph.dx);
                items.finish();
                shown.finish();
                content.set_rise(0.0);
            }
        }
        content.end_text();
    }

    /// Ends a page whose drawing is `content`.
    pub(crate) fn page(&mut self, content: Content) {
        let stream = self.allocate();
        let page = self.allocate();
        let mut chunk = Chunk::new();
        chunk
            .stream(stream, &deflate(&content.finish()))
            .filter(Filter::FlateDecode);
        self.object(stream, &chunk);
        let mut chunk = Chunk::new();
        let mut p = chunk.page(page);
        p.media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1));
        p.parent(PAGE_TREE);
        p.contents(stream);
        let mut resources = p.resources();
        let mut fonts = resources.fonts();
        for (i, &weight) in Weight::ALL.iter().enumerate() {
            fonts.pair(font_name(weight), Ref::new(FONTS + 5 * i as i32));
        }
        fonts.finish();
        resources.finish();
        p.finish();
        self.object(page, &chunk);
        self.pages.push(page);
    }

    /// Writes what comes after the last page and returns the file's last bytes.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, subsetter::Error> {
        let fonts = std::mem::take(&mut self.fonts);
        for (i, used) in fonts.iter().enumerate() {
            self.embed(FONTS + 5 * i as i32, used)?;
        }

        let mut chunk = Chunk::new();
        chunk
            .pages(PAGE_TREE)
            .kids(self.pages.iter().copied())
            .count(self.pages.len() as i32);
        self.object(PAGE_TREE, &chunk);
        let mut chunk = Chunk::new();
        chunk.indirect(CATALOG).start::<Catalog>().pages(PAGE_TREE);
        self.object(CATALOG, &chunk);
        let mut chunk = Chunk::new();
        let c = self.created;
        use chrono::{Datelike, Timelike};
        chunk
            .indirect(INFO)
            .start::<DocumentInfo>()
            .title(TextStr(&self.title))
            .producer(TextStr("undersigned"))
            .creation_date(
                Date::new(c.year() as u16)
                    .month(c.month() as u8)
                    .day(c.day() as u8)
                    .hour(c.hour() as u8)
                    .minute(c.minute() as u8)
                    .second(c.second() as u8)
                    .utc_offset_hour(0)
                    .utc_offset_minute(0),
            );
        self.object(INFO, &chunk);

        let xref = self.sent + self.out.len() as u64;
        let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", self.offsets.len() + 1);
        for offset in &self.offsets {
            tail.push_str(&format!("{offset:010} 00000 n \n"));
        }
        // The file identifier: the export's.
        let id = hex::encode(self.id.as_bytes());
        tail.push_str(&format!(
            "trailer\n<< /Size {} /Root {} 0 R /Info {} 0 R /ID [<{id}> <{id}>] >>\nstartxref\n{xref}\n%%EOF\n",
            self.offsets.len() + 1,
            CATALOG.get(),
            INFO.get(),
        ));
        self.out.extend_from_slice(tail.as_bytes());
        Ok(self.take())
    }

    /// Embeds the subset of a font that the pages use, as a CID-keyed
    /// TrueType font (Identity-H: each glyph is shown by its two-byte number in
    /// the subset), with the widths and a ToUnicode map so that the text can
    /// be searched and copied.
    fn embed(&mut self, first: i32, used: &FontUse) -> Result<(), subsetter::Error> {
        let [type0, cid, descriptor, file, cmap] = [0, 1, 2, 3, 4].map(|i| Ref::new(first + i));
        let subset = subsetter::subset(used.font.data, 0, &used.glyphs)?;
        // A subset's name starts with a tag naming the glyphs it keeps.
        let glyph_ids: Vec<u16> = used.glyphs.remapped_gids().collect();
        let digest = Sha256::digest(
            glyph_ids
                .iter()
                .flat_map(|g| g.to_be_bytes())
                .collect::<Vec<_>>(),
        );
        let tag: String = digest[..6]
            .iter()
            .map(|b| char::from(b'A' + b % 26))
            .collect();
        let base = format!("{tag}+{}", used.font.postscript_name);
        let base = Name(base.as_bytes());
        let system = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };

        let mut chunk = Chunk::new();
        chunk
            .type0_font(type0)
            .base_font(base)
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(cmap);
        self.object(type0, &chunk);

        let mut chunk = Chunk::new();
        let mut font = chunk.cid_font(cid);
        font.subtype(CidFontType::Type2)
            .base_font(base)
            .system_info(system)
            .font_descriptor(descriptor)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        font.widths()
            .consecutive(0, glyph_ids.iter().map(|&g| used.font.pdf_width(g)));
        font.finish();
        self.object(cid, &chunk);

        let f = &used.font;
        let b = f.bounds;
        let mut chunk = Chunk::new();
        chunk
            .font_descriptor(descriptor)
            .name(base)
            // Glyphs beyond the standard Latin set: symbolic, in PDF's terms.
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(
                f.to_pdf(b[0]),
                f.to_pdf(b[1]),
                f.to_pdf(b[2]),
                f.to_pdf(b[3]),
            ))
            .italic_angle(0.0)
            .ascent(f.to_pdf(f.ascender))
            .descent(f.to_pdf(f.descender))
            .cap_height(f.to_pdf(f.cap_height))
            .stem_v(80.0)
            .font_file2(file);
        self.object(descriptor, &chunk);

        let mut chunk = Chunk::new();
        chunk
            .stream(file, &deflate(&subset))
            .filter(Filter::FlateDecode)
            .pair(Name(b"Length1"), subset.len() as i32);
        self.object(file, &chunk);

        let mut map = UnicodeCmap::new(Name(b"Adobe-Identity-UCS"), system);
        for (&id, text) in &used.text {
            if !text.is_empty() {
                map.pair_with_multiple(id, text.chars());
            }
        }
        let mut chunk = Chunk::new();
        chunk
            .stream(cmap, &deflate(&map.finish()))
            .filter(Filter::FlateDecode);
        self.object(cmap, &chunk);
        Ok(())
    }
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::with_capacity(bytes.len() / 3), Compression::fast());
    z.write_all(bytes).expect("writing to memory");
    z.finish().expect("writing to memory")
}
