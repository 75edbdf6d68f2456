//! Signatures as a PDF for printing and hand delivery: a cover (the petition's
//! text in the chosen locale, whom it addresses, what was exported and the
//! counts by country), then the signatories in numbered tables, page after
//! page, each page with a footer that says which signatures it holds.
//!
//! Written as the rows arrive: see `document` for how the file is laid out
//! and `text` for shaping, bidirectional order and wrapping.

mod document;
mod text;

use std::collections::BTreeMap;

use pdf_writer::Content;
use undersigned_store::ExportRow;

use crate::columns::Column;
use crate::{ExportError, ExportJob};
use document::{Document, PAGE};
use text::Weight;

const MARGIN: f32 = 42.0;
const FOOTER: f32 = 24.0;
const TOP: f32 = PAGE.1 - MARGIN;
const BOTTOM: f32 = MARGIN + FOOTER;
const WIDTH: f32 = PAGE.0 - 2.0 * MARGIN;

/// Table text size and the space between its lines, in points.
const CELL: f32 = 8.0;
const LEADING: f32 = 10.0;
const PADDING: f32 = 3.0;

/// A column's title, and either the text its values never exceed (a column
/// as wide as that) or its share of the width the others leave.
fn heading(column: Column) -> (&'static str, Width) {
    use Width::{Fits, Share};
    match column {
        Column::Receipt => ("Receipt", Fits("00000000-0000-0000-0000-000000000000")),
        Column::FullName => ("Name", Share(3.0)),
        Column::Organization => ("Organization", Share(2.4)),
        Column::SignerKind => ("Signs as", Fits("organization")),
        Column::City => ("City", Share(2.0)),
        Column::PostalCode => ("Postal code", Share(1.1)),
        Column::Country => ("Country", Fits("MM")),
        Column::SignedAt => ("Signed at (UTC)", Fits("0000-00-00 00:00:00")),
        Column::Channel => ("Channel", Fits("import")),
        Column::Email => ("E-mail", Share(3.0)),
        Column::Locale => ("Language", Fits("az-Latn")),
        Column::ConsentUpdates => ("Updates", Fits("false")),
        Column::ConsentedAt => ("Consented (UTC)", Fits("0000-00-00 00:00:00")),
    }
}

#[derive(Clone, Copy)]
enum Width {
    Fits(&'static str),
    Share(f32),
}

/// Each column's width in points, the row number's first.
fn column_widths(doc: &Document, columns: &[Column], total: u64) -> Vec<f32> {
    let points = |weight: Weight, size: f32, text: &str| {
        doc.font(weight).line(text, None).width * size / 1000.0 + 2.0 * PADDING
    };
    let fitted = |title: &str, sample: &str| {
        points(Weight::Bold, CELL, title).max(points(Weight::Regular, CELL, sample))
    };
    let number = fitted("No.", &grouped(total.max(1)));
    let fixed: f32 = number
        + columns
            .iter()
            .map(|&c| match heading(c) {
                (title, Width::Fits(sample)) => fitted(title, sample),
                _ => 0.0,
            })
            .sum::<f32>();
    let shares: f32 = columns
        .iter()
        .map(|&c| match heading(c).1 {
            Width::Share(s) => s,
            Width::Fits(_) => 0.0,
        })
        .sum();
    // What the fixed columns leave, shared; never narrower than a short word.
    let left = (WIDTH - fixed).max(0.0);
    let widths: Vec<f32> = std::iter::once(number)
        .chain(columns.iter().map(|&c| match heading(c) {
            (title, Width::Fits(sample)) => fitted(title, sample),
            (_, Width::Share(s)) => (left * s / shares).max(36.0),
        }))
        .collect();
    // With many columns, all narrow alike to fit the page; their texts wrap.
    let sum: f32 = widths.iter().sum();
    if sum > WIDTH + 0.5 {
        widths.iter().map(|w| w * WIDTH / sum).collect()
    } else {
        widths
    }
}

/// The most lines a cell shows: a row must fit on a page. Only a text far
/// longer than any name (the service takes 200 characters) in a narrow
/// column reaches it; the CSV beside the PDF keeps it whole.
const MOST_LINES: usize = 40;

/// 1234567 as "1,234,567".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A cell's text, shown on one line of the table or wrapped: control
/// characters become spaces.
fn cell_text(column: Column, row: &ExportRow) -> String {
    match column {
        Column::SignedAt => row.signed_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        Column::ConsentedAt => row.consented_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => column
            .value(row)
            .map(|v| {
                v.chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// A table cell: its lines, shaped.
struct Cell<'t> {
    lines: Vec<(&'t str, text::Line)>,
    right: bool,
}

/// What the cover says beyond the petition itself.
pub(crate) struct Cover<'a> {
    pub(crate) total: u64,
    pub(crate) by_country: &'a BTreeMap<String, u64>,
    /// In a bundle, the Merkle root of its CSV (the signed manifest has it too).
    pub(crate) merkle_root: Option<&'a str>,
}

/// The PDF of a pass over the snapshot (its totals already read), handed out
/// as it is written.
pub(crate) struct Printer {
    pdf: Option<SignatoryPdf>,
    listed: u64,
}

impl Printer {
    pub(crate) fn new(job: &ExportJob<'_>, cover: Cover<'_>) -> Self {
        Self {
            pdf: Some(SignatoryPdf::new(job, cover)),
            listed: 0,
        }
    }

    /// The next bytes of the PDF; `None` after its last.
    pub(crate) async fn next(
        &mut self,
        rows: &mut crate::Rows,
    ) -> Result<Option<Vec<u8>>, ExportError> {
        let Some(pdf) = self.pdf.as_mut() else {
            return Ok(None);
        };
        let ready = pdf.take();
        if !ready.is_empty() {
            return Ok(Some(ready));
        }
        match rows.batch().await? {
            Some(batch) => {
                // Laying out 2,000 rows takes some 100 ms: in slices, so that
                // the other requests of this thread are not kept waiting.
                for slice in batch.chunks(100) {
                    pdf.rows(slice);
                    tokio::task::yield_now().await;
                }
                Ok(Some(pdf.take()))
            }
            None => {
                let pdf = self.pdf.take().expect("checked above");
                self.listed = pdf.drawn;
                pdf.finish().map(Some)
            }
        }
    }

    /// How many signatures the finished PDF lists.
    pub(crate) fn listed(&self) -> u64 {
        self.listed
    }
}

struct SignatoryPdf {
    doc: Document,
    columns: Vec<Column>,
    /// The width of each column, the row number's first, in points.
    widths: Vec<f32>,
    content: Content,
    /// Where the next line goes, in points from the bottom.
    y: f32,
    total: u64,
    /// Rows drawn, and the number of the first on this page.
    drawn: u64,
    first_on_page: Option<u64>,
    footer_title: String,
}

impl SignatoryPdf {
    /// A document whose cover is drawn.
    fn new(job: &ExportJob<'_>, cover: Cover<'_>) -> Self {
        let p = job.petition;
        let (locale, wording) = job.wording();
        let doc = Document::new(wording.title.clone(), job.exported_at, job.id);
        let widths = column_widths(&doc, &job.columns, cover.total);
        let mut pdf = Self {
            doc,
            columns: job.columns.clone(),
            widths,
            content: Content::new(),
            y: TOP,
            total: cover.total,
            drawn: 0,
            first_on_page: None,
            footer_title: wording.title.clone(),
        };

        pdf.paragraph(Weight::Bold, 17.0, &wording.title, 0.0);
        pdf.space(6.0);
        for paragraph in wording.text.split('\n') {
            pdf.paragraph(Weight::Regular, 10.0, paragraph, 0.0);
            pdf.space(3.0);
        }
        if let Some(ask) = &wording.ask {
            pdf.space(3.0);
            pdf.paragraph(Weight::Bold, 10.0, ask, 0.0);
        }
        if !p.targets.is_empty() {
            pdf.section("Addressed to");
            for target in &p.targets {
                let line = match &target.country {
                    Some(c) => format!("{} ({c})", target.name),
                    None => target.name.clone(),
                };
                pdf.paragraph(Weight::Regular, 10.0, &line, 10.0);
            }
        }
        pdf.section("This document");
        let f = &job.filter;
        let mut facts = vec![
            ("Petition", p.slug.clone()),
            ("Text shown in", locale.to_owned()),
            ("Signatures", grouped(cover.total)),
            (
                "Exported at",
                job.exported_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ),
            ("Export", job.id.to_string()),
            (
                "Countries",
                f.countries
                    .as_ref()
                    .map_or_else(|| "all".to_owned(), |c| c.join(", ")),
            ),
            ("Status", f.status.as_str().to_owned()),
        ];
        if let Some(since) = f.since {
            facts.push(("Signed from", since.to_rfc3339()));
        }
        if let Some(until) = f.until {
            facts.push(("Signed before", until.to_rfc3339()));
        }
        if let Some(channel) = f.channel {
            facts.push(("Channel", channel.as_str().to_owned()));
        }
        if let Some(kind) = f.signer_kind {
            facts.push(("Signers", kind.as_str().to_owned()));
        }
        if let Some(root) = cover.merkle_root {
            facts.push(("Merkle root of signatures.csv", root.to_owned()));
        }
        for (label, value) in facts {
            pdf.fact(label, &value);
        }
        if !cover.by_country.is_empty() {
            pdf.section("Signatures by country");
            for (country, count) in cover.by_country {
                pdf.fact(country, &grouped(*count));
            }
        }
        pdf.end_page();
        pdf
    }

    /// What is ready to leave.
    fn take(&mut self) -> Vec<u8> {
        self.doc.take()
    }

    /// Adds rows to the signatories' table.
    fn rows(&mut self, rows: &[ExportRow]) {
        for row in rows {
            self.row(row);
        }
    }

    /// The last pages, the font subsets and the cross-reference table.
    fn finish(mut self) -> Result<Vec<u8>, ExportError> {
        if self.drawn == 0 {
            self.start_table();
            self.paragraph(
                Weight::Regular,
                10.0,
                "No signatures match this export.",
                0.0,
            );
        }
        self.end_page();
        self.doc
            .finish()
            .map_err(|e| ExportError::Pdf(format!("embedding the font: {e:?}")))
    }

    fn space(&mut self, points: f32) {
        self.y -= points;
    }

    /// Room for `height` points on this page, or a new page.
    fn room(&mut self, height: f32) -> bool {
        if self.y - height < BOTTOM {
            self.end_page();
            true
        } else {
            false
        }
    }

    fn end_page(&mut self) {
        if self.y == TOP && self.first_on_page.is_none() {
            return;
        }
        let number = self.doc.pages() + 1;
        let footer = match self.first_on_page.take() {
            Some(first) => format!(
                "Signatures {}–{} of {} · page {number} · {}",
                grouped(first),
                grouped(self.drawn),
                grouped(self.total),
                self.footer_title,
            ),
            None => format!("Page {number} · {}", self.footer_title),
        };
        let font = self.doc.font(Weight::Regular);
        let lines = font.wrap(&footer, WIDTH * 1000.0 / 7.0);
        let line = font.line(lines[0], Some(false));
        let mut content = std::mem::replace(&mut self.content, Content::new());
        content.set_fill_gray(0.35);
        self.doc.show(
            &mut content,
            (Weight::Regular, 7.0),
            [MARGIN, MARGIN],
            lines[0],
            &line,
        );
        content.set_fill_gray(0.0);
        self.doc.page(content);
        self.y = TOP;
    }

    /// A paragraph wrapped to the page, aligned to its direction.
    fn paragraph(&mut self, weight: Weight, size: f32, text: &str, indent: f32) {
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = text.as_str();
        let leading = size * 1.3;
        let width = WIDTH - indent;
        let rtl = self.doc.font(weight).line(text, None).rtl;
        let lines = self.doc.font(weight).wrap(text, width * 1000.0 / size);
        for part in lines {
            self.room(leading);
            self.y -= leading;
            let line = self.doc.font(weight).line(part, Some(rtl));
            let x = if rtl {
                MARGIN + WIDTH - line.width * size / 1000.0
            } else {
                MARGIN + indent
            };
            self.doc.show(
                &mut self.content,
                (weight, size),
                [x, self.y + size * 0.25],
                part,
                &line,
            );
        }
    }

    fn section(&mut self, title: &str) {
        self.space(10.0);
        self.room(40.0);
        self.paragraph(Weight::Bold, 12.0, title, 0.0);
        self.space(2.0);
    }

    /// A label and its value, side by side.
    fn fact(&mut self, label: &str, value: &str) {
        let size = 9.5;
        let leading = size * 1.3;
        let column = 170.0;
        let font = self.doc.font(Weight::Regular);
        let lines = font.wrap(value, (WIDTH - column) * 1000.0 / size);
        self.room(leading * lines.len() as f32);
        self.y -= leading;
        let shaped = self.doc.font(Weight::Bold).line(label, Some(false));
        let y = self.y + size * 0.25;
        self.doc.show(
            &mut self.content,
            (Weight::Bold, size),
            [MARGIN, y],
            label,
            &shaped,
        );
        for (i, part) in lines.iter().enumerate() {
            if i > 0 {
                self.y -= leading;
            }
            let line = self.doc.font(Weight::Regular).line(part, None);
            let y = self.y + size * 0.25;
            self.doc.show(
                &mut self.content,
                (Weight::Regular, size),
                [MARGIN + column, y],
                part,
                &line,
            );
        }
    }

    /// The table's header row, on a new page.
    fn start_table(&mut self) {
        if self.y != TOP {
            self.end_page();
        }
        let titles: Vec<&str> = std::iter::once("No.")
            .chain(self.columns.iter().map(|&c| heading(c).0))
            .collect();
        let cells: Vec<(String, bool)> = titles.iter().map(|t| ((*t).to_owned(), false)).collect();
        let laid = self.lay_out(Weight::Bold, &cells);
        self.draw_row(Weight::Bold, &laid);
        self.rule(0.8, 0.0);
    }

    fn row(&mut self, row: &ExportRow) {
        if self.y == TOP {
            self.start_table();
        }
        let number = self.drawn + 1;
        let mut cells = vec![(grouped(number), true)];
        cells.extend(self.columns.iter().map(|&c| (cell_text(c, row), false)));
        let laid = self.lay_out(Weight::Regular, &cells);
        let lines = laid.iter().map(|c| c.lines.len()).max().unwrap_or(1);
        if self.room(lines as f32 * LEADING + 2.0 * PADDING) {
            self.start_table();
        }
        self.first_on_page.get_or_insert(number);
        self.draw_row(Weight::Regular, &laid);
        self.rule(0.3, 0.75);
        self.drawn = number;
    }

    /// Each cell shaped and wrapped to its column, once.
    fn lay_out<'c>(&self, weight: Weight, cells: &'c [(String, bool)]) -> Vec<Cell<'c>> {
        let font = self.doc.font(weight);
        cells
            .iter()
            .zip(&self.widths)
            .map(|((text, right), width)| {
                let inner = (width - 2.0 * PADDING) * 1000.0 / CELL;
                let whole = font.line(text, None);
                let rtl = whole.rtl;
                // A text as wide as its column, to rounding, fits.
                let lines = if whole.width <= inner + 1.0 {
                    vec![(text.as_str(), whole)]
                } else {
                    let mut parts = font.wrap(text, inner);
                    if parts.len() > MOST_LINES {
                        parts.truncate(MOST_LINES);
                        parts[MOST_LINES - 1] = "…";
                    }
                    parts
                        .into_iter()
                        .map(|part| (part, font.line(part, Some(rtl))))
                        .collect()
                };
                Cell {
                    lines,
                    right: *right,
                }
            })
            .collect()
    }

    /// Draws a row of cells; a cell marked `right` is aligned right, as is
    /// one that reads right to left. Each cell draws only inside itself: a
    /// text whose marks stack far above its letters (or any the layout
    /// misjudges) cannot draw over the rows around it or off the page.
    fn draw_row(&mut self, weight: Weight, cells: &[Cell<'_>]) {
        let top = self.y;
        let lines = cells.iter().map(|c| c.lines.len()).max().unwrap_or(1);
        let bottom = top - lines as f32 * LEADING - 2.0 * PADDING;
        let mut x = MARGIN;
        for (cell, &width) in cells.iter().zip(&self.widths) {
            // An empty cell draws nothing: no clip, no text object.
            if cell.lines.iter().all(|(part, _)| part.is_empty()) {
                x += width;
                continue;
            }
            // To a hundredth of a point, which the file spells shorter.
            let round = |v: f32| (v * 100.0).round() / 100.0;
            self.content
                .save_state()
                .rect(round(x), round(bottom), round(width), round(top - bottom))
                .clip_nonzero()
                .end_path();
            let mut y = top - PADDING;
            for (part, line) in &cell.lines {
                y -= LEADING;
                let left = if cell.right || line.rtl {
                    x + width - PADDING - line.width * CELL / 1000.0
                } else {
                    x + PADDING
                };
                self.doc.show_within(
                    &mut self.content,
                    (weight, CELL),
                    [left, y + 2.5],
                    part,
                    line,
                    Some([bottom, top]),
                );
            }
            self.content.restore_state();
            x += width;
        }
        self.y = bottom;
    }

    /// A horizontal line under what was drawn last.
    fn rule(&mut self, width: f32, gray: f32) {
        self.content
            .set_stroke_gray(gray)
            .set_line_width(width)
            .move_to(MARGIN, self.y)
            .line_to(MARGIN + WIDTH, self.y)
            .stroke();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use ed25519_dalek::SigningKey;
    use flate2::read::ZlibDecoder;

    use super::*;
    use crate::sample::{job, petition, row, snapshot};
    use crate::{Format, Hashing};

    /// A PDF of these rows, as an export writes it.
    async fn printed(rows: Vec<ExportRow>) -> Vec<u8> {
        let p = petition();
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut job = job(&p, &key, Format::Pdf);
        job.exported_at = chrono::DateTime::UNIX_EPOCH;
        let mut out = Vec::new();
        crate::printable(&job, &mut snapshot(rows, 1), &mut Hashing::new(&mut out))
            .await
            .unwrap();
        out
    }

    /// The drawing of each page: the streams that inflate to text drawing
    /// text.
    fn drawings(pdf: &[u8]) -> Vec<String> {
        let find = |from: usize, what: &[u8]| {
            pdf[from..]
                .windows(what.len())
                .position(|w| w == what)
                .map(|at| from + at)
        };
        let mut drawings = Vec::new();
        let mut at = 0;
        while let Some(start) = find(at, b">>\nstream\n") {
            let start = start + b">>\nstream\n".len();
            let end = find(start, b"\nendstream").unwrap();
            let mut inflated = Vec::new();
            if ZlibDecoder::new(&pdf[start..end])
                .read_to_end(&mut inflated)
                .is_ok()
                && let Ok(text) = String::from_utf8(inflated)
                && text.lines().any(|l| l == "BT")
            {
                drawings.push(text);
            }
            at = end;
        }
        drawings
    }

    /// Each piece of text a page draws at the table's size: where it starts,
    /// and the rectangle it is clipped to (`[x, y, width, height]`), if any.
    fn cell_texts(drawing: &str) -> Vec<([f32; 2], Option<[f32; 4]>)> {
        let mut texts = Vec::new();
        let (mut clip, mut saved, mut path) = (None, Vec::new(), None);
        let mut size = 0.0;
        for line in drawing.lines() {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let numbers: Vec<f32> = tokens.iter().filter_map(|t| t.parse().ok()).collect();
            match tokens.last().copied() {
                Some("q") => saved.push(clip),
                Some("Q") => clip = saved.pop().unwrap(),
                Some("re") => path = Some([numbers[0], numbers[1], numbers[2], numbers[3]]),
                Some("W") => clip = path,
                Some("Tf") => size = numbers[0],
                Some("Tm") if size == CELL => texts.push(([numbers[4], numbers[5]], clip)),
                _ => {}
            }
        }
        texts
    }

    #[tokio::test]
    async fn every_cell_is_clipped_to_itself_so_a_name_cannot_draw_over_its_neighbours() {
        // A letter and 199 combining marks, which stack far above it: the
        // service refuses such a name, but the PDF must not trust its rows.
        let defacing = format!("a{}", "\u{301}".repeat(199));
        let mut rows: Vec<ExportRow> = (0..8).map(row).collect();
        rows[4].full_name = defacing.clone();
        let pdf = printed(rows.clone()).await;
        let drawings = drawings(&pdf);
        assert_eq!(drawings.len(), 2, "a cover and one page of signatures");
        let texts = cell_texts(&drawings[1]);
        let mut cells: Vec<[f32; 4]> = Vec::new();
        for (origin, clip) in &texts {
            let clip = clip.unwrap_or_else(|| panic!("the text at {origin:?} is not clipped"));
            let [x, y, w, h] = clip;
            assert!(
                (x..=x + w).contains(&origin[0]) && (y..=y + h).contains(&origin[1]),
                "the text at {origin:?} starts outside its cell {clip:?}"
            );
            if !cells.contains(&clip) {
                cells.push(clip);
            }
        }
        // The header's seven cells and, in each of the eight rows, the five
        // that are not empty (no organization, no postal code).
        assert_eq!(cells.len(), 7 + 8 * 5);
        for (i, a) in cells.iter().enumerate() {
            for b in &cells[i + 1..] {
                let apart = a[0] + a[2] <= b[0] + 0.01
                    || b[0] + b[2] <= a[0] + 0.01
                    || a[1] + a[3] <= b[1] + 0.01
                    || b[1] + b[3] <= a[1] + 0.01;
                assert!(apart, "cells {a:?} and {b:?} overlap");
            }
        }
        // A text extractor, which reads what is clipped too, reads the rows
        // around it as it does beside a plain name.
        rows[4].full_name = "a".into();
        let plain = pdf_text(&printed(rows).await);
        let text = pdf_text(&pdf);
        assert_eq!(text.replace('\u{301}', ""), plain);
        assert!(text.contains("\n3 Leyla Məmmədova\n"), "{text}");
    }

    /// The text of a PDF as poppler's `pdftotext` reads it.
    fn pdf_text(pdf: &[u8]) -> String {
        let file = std::env::temp_dir().join(format!(
            "undersigned-export-{}-{:?}.pdf",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&file, pdf).unwrap();
        let out = std::process::Command::new("pdftotext")
            .arg(&file)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils; deploy/test installs it)");
        std::fs::remove_file(&file).unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn every_column_fits_the_page() {
        let doc = Document::new(String::new(), chrono::Utc::now(), uuid::Uuid::nil());
        for columns in [
            &Column::ALL[..],
            &Column::DELIVERY[..],
            &[Column::Email][..],
        ] {
            let widths = column_widths(&doc, columns, 1_000_000);
            assert_eq!(widths.len(), columns.len() + 1);
            assert!(widths.iter().sum::<f32>() <= WIDTH + 0.01, "{columns:?}");
            // Columns sized to their longest value keep that size.
            if columns == &Column::DELIVERY[..] {
                let signed_at = widths[columns.len()];
                let sample = doc.font(Weight::Regular).line("0000-00-00 00:00:00", None);
                assert!(signed_at >= sample.width * CELL / 1000.0 + 2.0 * PADDING - 0.01);
            }
            // The tallest row a cell allows still fits below the header.
            assert!(MOST_LINES as f32 * LEADING + 2.0 * PADDING < TOP - BOTTOM - 3.0 * LEADING);
        }
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
