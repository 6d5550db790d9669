//! Splitting: one request cut into smaller ones (the pipeline's parts, Tempo's request size limit),
//! every span kept once, in order, under a copy of its own resource and scope.

use crate::wire::{put_nested, Reader, Result};

/// Cuts ``request`` into requests of at most ``max_spans`` spans and about ``max_bytes`` bytes
/// each (a single span larger than that travels alone), every span under its own resource and
/// scope; with the span count of each part. Fields other than the spans are copied into every
/// part that holds spans of their resource or scope.
pub fn split(request: &[u8], max_spans: usize, max_bytes: usize) -> Result<Vec<(Vec<u8>, u32)>> {
    let mut parts = Vec::new();
    let mut part = Part::default();
    let mut reader = Reader::new(request);
    while let Some(field) = reader.next()? {
        if field.number != 1 {
            continue;
        }
        let mut resource_head = Vec::new(); // every field of ResourceSpans but its scope_spans
        let mut scopes = Vec::new();
        let mut resource_reader = Reader::new(field.bytes("resource_spans")?);
        while let Some(resource_field) = resource_reader.next()? {
            if resource_field.number == 2 {
                scopes.push(resource_field.bytes("scope_spans")?);
            } else {
                resource_head.extend_from_slice(resource_field.raw);
            }
        }
        for scope in scopes {
            let mut scope_head = Vec::new();
            let mut spans = Vec::new();
            let mut scope_reader = Reader::new(scope);
            while let Some(scope_field) = scope_reader.next()? {
                if scope_field.number == 2 {
                    spans.push(scope_field.raw);
                } else {
                    scope_head.extend_from_slice(scope_field.raw);
                }
            }
            let overhead = resource_head.len() + scope_head.len() + 16;
            for span in spans {
                if part.spans > 0
                    && (part.spans as usize >= max_spans
                        || part.bytes + span.len() + overhead > max_bytes)
                {
                    parts.push(part.finish());
                }
                part.add(&resource_head, &scope_head, span);
            }
            part.close_scope();
        }
        part.close_resource();
    }
    if part.spans > 0 {
        parts.push(part.finish());
    }
    Ok(parts)
}

/// A part being built: finished resources, and the open resource and scope.
#[derive(Default)]
struct Part {
    done: Vec<u8>,
    resource: Option<(Vec<u8>, Vec<u8>)>, // (head, finished scopes)
    scope: Option<(Vec<u8>, Vec<u8>)>,    // (head, spans)
    spans: u32,
    bytes: usize,
}

impl Part {
    fn add(&mut self, resource_head: &[u8], scope_head: &[u8], span: &[u8]) {
        if self.resource.is_none() {
            self.resource = Some((resource_head.to_vec(), Vec::new()));
            self.bytes += resource_head.len() + 8;
        }
        if self.scope.is_none() {
            self.scope = Some((scope_head.to_vec(), Vec::new()));
            self.bytes += scope_head.len() + 8;
        }
        let (_, spans) = self.scope.as_mut().expect("open scope");
        spans.extend_from_slice(span);
        self.spans += 1;
        self.bytes += span.len();
    }

    fn close_scope(&mut self) {
        if let Some((head, spans)) = self.scope.take() {
            let (_, scopes) = self.resource.as_mut().expect("open resource");
            put_nested(scopes, 2, |out| {
                out.extend_from_slice(&head);
                out.extend_from_slice(&spans);
            });
        }
    }

    fn close_resource(&mut self) {
        self.close_scope();
        if let Some((head, scopes)) = self.resource.take() {
            put_nested(&mut self.done, 1, |out| {
                out.extend_from_slice(&head);
                out.extend_from_slice(&scopes);
            });
        }
    }

    fn finish(&mut self) -> (Vec<u8>, u32) {
        self.close_resource();
        let spans = self.spans;
        // The next part reopens the same resource and scope when it takes more of their spans.
        let done = std::mem::take(&mut self.done);
        self.spans = 0;
        self.bytes = 0;
        (done, spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{scan, ScanConfig};
    use crate::wire::put_bytes;

    fn span(id: u8, payload: usize) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, &[id; 16]);
        put_bytes(&mut out, 2, &[id; 8]);
        put_bytes(&mut out, 5, &vec![b'x'; payload]);
        out
    }

    fn request(resources: &[&[Vec<u8>]]) -> Vec<u8> {
        let mut out = Vec::new();
        for spans in resources {
            put_nested(&mut out, 1, |rs| {
                put_nested(rs, 1, |r| {
                    put_nested(r, 1, |kv| put_bytes(kv, 1, b"service.name"))
                });
                put_nested(rs, 2, |ss| {
                    put_nested(ss, 1, |s| put_bytes(s, 1, b"scope"));
                    for one in *spans {
                        put_bytes(ss, 2, one);
                    }
                });
            });
        }
        out
    }

    #[test]
    fn split_keeps_every_span_once_in_order_under_its_resource() {
        let first: Vec<Vec<u8>> = (0..5).map(|i| span(i, 10)).collect();
        let second: Vec<Vec<u8>> = (5..8).map(|i| span(i, 10)).collect();
        let whole = request(&[&first, &second]);
        let parts = split(&whole, 2, 1 << 20).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.1).collect::<Vec<_>>(),
            vec![2, 2, 2, 2]
        );
        let config = ScanConfig::default();
        let mut ids = Vec::new();
        for (part, count) in &parts {
            let found = scan(part, &config).unwrap();
            assert_eq!(found.span_count, *count);
            assert!(found.resources.len() <= 2);
        }
        // Every span's bytes appear in exactly one part, in the original order.
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.0.clone()).collect();
        for one in first.iter().chain(&second) {
            let at = joined
                .windows(one.len())
                .position(|w| w == one.as_slice())
                .unwrap();
            ids.push(at);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn split_by_bytes_lets_a_large_span_travel_alone() {
        let spans = vec![span(1, 10), span(2, 5000), span(3, 10)];
        let parts = split(&request(&[&spans]), 100, 1000).unwrap();
        assert_eq!(parts.iter().map(|p| p.1).collect::<Vec<_>>(), vec![1, 1, 1]);
    }
}
