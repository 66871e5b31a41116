//! The HL7 v2 message an hl7v2-target mapping builds: segments in the order first written (MSH
//! first), each a grid of fields, repetitions, components and subcomponents holding text already
//! escaped for the standard delimiters `|^~\&`. `MessageWriter` lays out the segments.

use tributary_hl7::{Delimiters, MessageWriter};

use crate::path::TIdx;

/// One repetition: components, each its subcomponents (escaped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftRep {
    components: Vec<Vec<String>>,
}

/// One segment: `fields[0]` is field 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftSegment {
    pub name: String,
    fields: Vec<Vec<DraftRep>>,
}

/// The message being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    segments: Vec<DraftSegment>,
}

/// `items[n - 1]`, made (with empty ones before it) if missing.
fn nth_mut<T: Default + Clone>(items: &mut Vec<T>, n: usize) -> &mut T {
    if items.len() < n {
        items.resize(n, T::default());
    }
    &mut items[n - 1]
}

impl DraftRep {
    /// Puts `encoded` at component / subcomponent (both 1-based); the whole repetition when
    /// neither is given, the whole component when only it is.
    pub fn set(&mut self, component: Option<usize>, subcomponent: Option<usize>, encoded: String) {
        match (component, subcomponent) {
            (None, _) => self.components = vec![vec![encoded]],
            (Some(c), None) => *nth_mut(&mut self.components, c) = vec![encoded],
            (Some(c), Some(s)) => *nth_mut(nth_mut(&mut self.components, c), s) = encoded,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.components.iter().flatten().all(String::is_empty)
    }

    fn encode(&self, d: &Delimiters, out: &mut String) {
        let used = self
            .components
            .iter()
            .rposition(|c| c.iter().any(|s| !s.is_empty()))
            .map_or(0, |last| last + 1);
        for (i, component) in self.components[..used].iter().enumerate() {
            if i > 0 {
                out.push(d.component);
            }
            let used = component
                .iter()
                .rposition(|s| !s.is_empty())
                .map_or(0, |last| last + 1);
            for (j, sub) in component[..used].iter().enumerate() {
                if j > 0 {
                    out.push(d.subcomponent);
                }
                out.push_str(sub);
            }
        }
    }
}

impl DraftSegment {
    pub fn new(name: &str) -> DraftSegment {
        DraftSegment {
            name: name.to_owned(),
            fields: Vec::new(),
        }
    }

    /// The repetition of field `field` (1-based): that one, or a new one for `[]`.
    pub fn repetition_mut(&mut self, field: usize, repetition: TIdx) -> &mut DraftRep {
        if self.fields.len() < field {
            self.fields.resize(field, Vec::new());
        }
        let repetitions = &mut self.fields[field - 1];
        match repetition {
            TIdx::At(n) => nth_mut(repetitions, n),
            TIdx::Append => {
                repetitions.push(DraftRep::default());
                let last = repetitions.len() - 1;
                &mut repetitions[last]
            }
        }
    }

    /// Appends a finished repetition to field `field` (1-based).
    pub fn push_repetition(&mut self, field: usize, repetition: DraftRep) {
        if self.fields.len() < field {
            self.fields.resize(field, Vec::new());
        }
        self.fields[field - 1].push(repetition);
    }

    pub fn is_empty(&self) -> bool {
        self.fields.iter().flatten().all(DraftRep::is_empty)
    }

    fn encode_field(repetitions: &[DraftRep], d: &Delimiters) -> String {
        let used = repetitions
            .iter()
            .rposition(|r| !r.is_empty())
            .map_or(0, |last| last + 1);
        let mut out = String::new();
        for (i, repetition) in repetitions[..used].iter().enumerate() {
            if i > 0 {
                out.push(d.repetition);
            }
            repetition.encode(d, &mut out);
        }
        out
    }
}

impl Draft {
    /// A message whose MSH already holds MSH-9 (message type, split on `^`) and MSH-12.
    pub fn new(message_type: &str, version: &str) -> Draft {
        let mut msh = DraftSegment::new("MSH");
        let msh_9 = msh.repetition_mut(9, TIdx::At(1));
        for (i, part) in message_type.split('^').enumerate() {
            msh_9.set(Some(i + 1), None, part.to_owned());
        }
        msh.repetition_mut(12, TIdx::At(1))
            .set(None, None, version.to_owned());
        Draft { segments: vec![msh] }
    }

    /// Occurrence `n` (1-based) of segment `name`, made (after any missing earlier ones) if
    /// missing. New segments go at the end: segments come out in the order first written.
    pub fn segment_mut(&mut self, name: &str, n: usize) -> &mut DraftSegment {
        let mut seen = 0;
        let mut found = None;
        for (i, segment) in self.segments.iter().enumerate() {
            if segment.name == name {
                seen += 1;
                if seen == n {
                    found = Some(i);
                    break;
                }
            }
        }
        let index = match found {
            Some(i) => i,
            None => {
                for _ in seen..n {
                    self.segments.push(DraftSegment::new(name));
                }
                self.segments.len() - 1
            }
        };
        &mut self.segments[index]
    }

    /// A new segment at the end (`OBX[]-5 = ...`).
    pub fn new_segment(&mut self, name: &str) -> &mut DraftSegment {
        self.segments.push(DraftSegment::new(name));
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    /// Appends a finished segment (a `for ... -> OBX[]` item).
    pub fn push_segment(&mut self, segment: DraftSegment) {
        self.segments.push(segment);
    }

    /// The message text, segments ended by `\r`. Empty segments other than MSH are left out.
    pub fn finish(&self) -> String {
        let delimiters = Delimiters::default();
        let mut writer = MessageWriter::new(delimiters);
        for segment in &self.segments {
            if segment.name != "MSH" && segment.is_empty() {
                continue;
            }
            writer.segment(&segment.name);
            for (i, repetitions) in segment.fields.iter().enumerate() {
                let number = i + 1;
                let is_delimiter_field = segment.name == "MSH" && number <= 2;
                if is_delimiter_field {
                    continue;
                }
                let encoded = DraftSegment::encode_field(repetitions, &delimiters);
                if !encoded.is_empty() {
                    writer.raw_field(number, &encoded);
                }
            }
        }
        writer.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_fields_repetitions_and_components() {
        let mut draft = Draft::new("ADT^A31^ADT_A05", "2.5");
        draft
            .segment_mut("MSH", 1)
            .repetition_mut(7, TIdx::At(1))
            .set(None, None, "20260101".into());
        let pid = draft.segment_mut("PID", 1);
        pid.repetition_mut(3, TIdx::At(1))
            .set(Some(1), None, "123".into());
        pid.repetition_mut(3, TIdx::At(1))
            .set(Some(4), Some(2), "1.2.3".into());
        pid.repetition_mut(3, TIdx::At(1))
            .set(Some(4), Some(1), "HOSP".into());
        pid.repetition_mut(3, TIdx::Append)
            .set(Some(1), None, "456".into());
        pid.repetition_mut(5, TIdx::At(1))
            .set(None, None, "DOE\\S\\JOHN".into());
        pid.repetition_mut(8, TIdx::At(1)).set(None, None, "\"\"".into());
        draft
            .segment_mut("OBX", 2)
            .repetition_mut(5, TIdx::At(1))
            .set(None, None, "b".into());
        draft
            .segment_mut("OBX", 1)
            .repetition_mut(5, TIdx::At(1))
            .set(None, None, "a".into());
        assert_eq!(
            draft.finish(),
            "MSH|^~\\&|||||20260101||ADT^A31^ADT_A05|||2.5\r\
             PID|||123^^^HOSP&1.2.3~456||DOE\\S\\JOHN|||\"\"\r\
             OBX|||||a\rOBX|||||b\r"
        );
    }

    #[test]
    fn empty_parts_are_trimmed_and_empty_segments_dropped() {
        let mut draft = Draft::new("ACK", "2.5");
        let mut seg = DraftSegment::new("NTE");
        seg.repetition_mut(3, TIdx::At(2))
            .set(Some(3), None, String::new());
        assert!(seg.is_empty());
        draft.push_segment(seg);
        let mut rep = DraftRep::default();
        rep.set(Some(2), Some(3), "x".into());
        let mut seg = DraftSegment::new("ZZZ");
        seg.push_repetition(2, DraftRep::default());
        seg.push_repetition(2, rep);
        draft.push_segment(seg);
        assert_eq!(draft.finish(), "MSH|^~\\&|||||||ACK|||2.5\rZZZ||~^&&x\r");
    }
}
