
(function () {
  var packed = atob(document.getElementById('plotly-js').textContent);
  var bytes = new Uint8Array(packed.length);
  for (var i = 0; i < packed.length; i++) bytes[i] = packed.charCodeAt(i);
  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text().then(function (code) {
    var script = document.createElement('script');
    script.textContent = code;
    document.head.appendChild(script);
    window.rareeventPlotlyMs = performance.now();
    draw();
  });
})();
function draw() {  // every report on the page: one for a file, one per series for a fleet
  window.rareevent = {plots: 0, episodes: 0, rendered: {}, plotlyMs: window.rareeventPlotlyMs};
  var sections = [], timelines = [];
  document.querySelectorAll('#report-data, script.report-data').forEach(function (data) {
    var root = document.getElementById(data.getAttribute('data-for') || 'report');
    var drawn = drawReport(JSON.parse(data.textContent), root);
    sections = sections.concat(drawn.sections);
    timelines.push(drawn.timeline);
  });
  window.rareevent.episodes = sections.length;
  function episode(section) { section.drawEpisode(); }
  if ('IntersectionObserver' in window) {
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) { if (entry.isIntersecting) { seen.unobserve(entry.target); episode(entry.target); } });
    }, {rootMargin: '400px'});
    sections.forEach(function (s) { seen.observe(s); });
  }
  window.rareevent.drawAll = function (limit) { sections.slice(0, limit || sections.length).forEach(episode); };
  // the sections out of view are drawn too, one at a time in the background once the timelines
  // are up, so that a print, a PDF or a headless screenshot shows every chart, and opening the
  // page stays as fast
  var next = 0;
  function background() {
    while (next < sections.length && sections[next].drawing) next += 1;
    if (next < sections.length) { episode(sections[next]); setTimeout(background, 0); }
  }
  Promise.all(timelines).then(function () { setTimeout(background, 0); });
  window.addEventListener('beforeprint', function () { window.rareevent.drawAll(); });
}
function drawReport(R, root) {
  var config = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ['sendDataToCloud']};
  var dated = R.axis.kind === 'date';
  var base = R.axis.base, unit = R.axis.unit;
  function X(v) { return v === null ? null : v * unit + base; }
  function xs(values) { return values.map(X); }
  function rect(x0, x1, colour, opacity, layer) {
    return {type: 'rect', xref: 'x', yref: 'paper', x0: X(x0), x1: X(x1), y0: 0, y1: 1, fillcolor: colour,
            opacity: opacity, line: {width: 1, color: colour}, layer: layer || 'below'};
  }
  function xaxis(extra) {
    var axis = {type: dated ? 'date' : 'linear', title: {text: dated ? '' : R.axis.name}};
    for (var k in extra) axis[k] = extra[k];
    return axis;
  }
  function done() { window.rareevent.plots += 1; }
  function spans(name, list, colour) {  // many spans as one filled trace (hundreds of layout shapes would slow every redraw)
    var x = [], y = [];
    list.forEach(function (span) { x.push(X(span[0]), X(span[0]), X(span[1]), X(span[1]), X(span[0]), null); y.push(0, 1, 1, 0, 0, null); });
    return {type: 'scatter', mode: 'lines', name: name, x: x, y: y, yaxis: 'y2', fill: 'toself', fillcolor: colour, line: {width: 1, color: colour},
            hoverinfo: 'skip', visible: list.length ? true : 'legendonly', showlegend: list.length > 0};
  }
  function timeline() {
    var t = R.timeline;
    var shapes = [];
    R.splits.forEach(function (s) { shapes.push({type: 'line', xref: 'x', yref: 'paper', x0: X(s[1]), x1: X(s[1]), y0: 0, y1: 1, line: {color: '#888', width: 1, dash: 'dot'}}); });
    shapes.push({type: 'line', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: R.threshold, y1: R.threshold, line: {color: '#ff7f0e', width: 1.5, dash: 'dash'}});
    var annotations = R.splits.map(function (s) { return {x: X(s[1]), y: 1, xref: 'x', yref: 'paper', text: s[0], showarrow: false, xanchor: 'left', yanchor: 'top', font: {size: 11, color: '#666'}}; });
    annotations.push({x: 1, y: R.threshold, xref: 'paper', yref: 'y', text: 'threshold ' + R.threshold.toPrecision(4), showarrow: false, xanchor: 'right', yanchor: 'bottom', font: {size: 11, color: '#ff7f0e'}});
    function judged(verdict) { return R.episodes.filter(function (e) { return e.verdict === verdict; }).map(function (e) { return e.span; }); }
    var labelled = R.episodes.some(function (e) { return e.verdict; });
    var alarms = labelled
      ? [spans('alarms on a labelled event (hit)', judged('hit'), 'rgba(214,39,40,0.35)'),
         spans('alarms without a labelled event (miss)', judged('miss'), 'rgba(148,103,189,0.35)')]
      : [spans('alarm episodes', R.episodes.map(function (e) { return e.span; }), 'rgba(214,39,40,0.3)')];
    var traces = alarms.concat([
      spans('labelled events', R.events, 'rgba(44,160,44,0.25)'),
      {type: 'scatter', mode: 'lines', name: 'window score', x: xs(t.x), y: t.y, line: {width: 1, color: '#1f77b4'}, connectgaps: false},
      {type: 'scatter', mode: 'markers', name: 'alarm windows', x: xs(t.alarm_x), y: t.alarm_y, marker: {size: 4, color: '#d62728'}}
    ]);
    var yaxis = {type: 'log', title: {text: 'score'}};
    if (t.ticks.length) { yaxis.tickvals = t.ticks; yaxis.ticktext = t.ticks.map(String); }
    var layout = {margin: {l: 60, r: 20, t: 10, b: 40}, xaxis: xaxis({rangeslider: {visible: false}}), yaxis: yaxis,
                  yaxis2: {overlaying: 'y', range: [0, 1], visible: false, fixedrange: true},
                  shapes: shapes, annotations: annotations, legend: {orientation: 'h', y: 1.08}, hovermode: 'closest'};
    return Plotly.newPlot(root.querySelector('.timeline'), traces, layout, config).then(function () { window.rareevent.timelineMs = window.rareevent.timelineMs || performance.now(); done(); });
  }
  function pr() {
    if (!R.pr) return;
    var p = R.pr;
    Plotly.newPlot(root.querySelector('.pr-plot'), [
      {type: 'scatter', mode: 'lines', name: 'PR curve', x: p.recall, y: p.precision, line: {color: '#1f77b4'}},
      {type: 'scatter', mode: 'markers', name: 'chosen threshold', x: [p.at[0]], y: [p.at[1]], marker: {size: 10, color: '#ff7f0e'}}
    ], {margin: {l: 50, r: 20, t: 30, b: 40},
        xaxis: {title: {text: 'recall'}, range: [0, 1.02]}, yaxis: {title: {text: 'precision'}, range: [0, 1.02]}, legend: {x: 0.02, y: 0.05}}, config).then(done);
  }
  function yrange(t) {  // the readings and the whole normal band in view, so a reader sees how far outside it they go
    var band = t.expected ? t.expected.filter(function (v) { return v !== null; }).map(function (v) { return v - t.error; })
      .concat(t.expected.filter(function (v) { return v !== null; }).map(function (v) { return v + t.error; })) : t.band;
    var values = t.y.filter(function (v) { return v !== null; }).concat(band);
    var low = Math.min.apply(null, values), high = Math.max.apply(null, values), pad = 0.06 * (high - low || 1);
    return [low - pad, high + pad];
  }
  function episode(section) {
    if (section.drawing) return;
    section.drawing = true;
    var e = R.episodes[+section.getAttribute('data-index')];
    var divs = section.querySelectorAll('.sensor-plot');
    var x = xs(e.x);
    var drawn = e.traces.map(function (t, i) {
      var title = t.context ? t.name + ' (context)' : t.name + ' (' + Math.round(t.share * 100) + '% of the error)';
      var shapes = [rect(e.span[0], e.span[1], '#d62728', 0.15)];
      var data = [{type: 'scatter', mode: 'lines', name: t.name, x: x, y: t.y, connectgaps: false,
                   line: {width: 1.2, color: t.context ? '#7f7f7f' : '#1f77b4', dash: t.context ? 'dot' : 'solid'}}];
      if (t.expected) {  // expected ± normal error: the band follows the setpoint
        var off = function (sign) { return t.expected.map(function (v) { return v === null ? null : v + sign * t.error; }); };
        data.unshift({type: 'scatter', mode: 'lines', name: 'normal low', x: x, y: off(-1), line: {width: 0}, hoverinfo: 'skip', connectgaps: false},
                     {type: 'scatter', mode: 'lines', name: 'normal high', x: x, y: off(1), line: {width: 0}, fill: 'tonexty',
                      fillcolor: 'rgba(136,136,136,0.25)', hoverinfo: 'skip', connectgaps: false});
        data.push({type: 'scatter', mode: 'lines', name: 'expected', x: x, y: t.expected, connectgaps: false, line: {width: 1.2, color: '#ff7f0e', dash: 'dash'}});
      } else {
        shapes.push({type: 'rect', xref: 'paper', yref: 'y', x0: 0, x1: 1, y0: t.band[0], y1: t.band[1], fillcolor: '#888', opacity: 0.22, line: {width: 1, color: '#555', dash: 'dot'}, layer: 'below'});
      }
      return Plotly.newPlot(divs[i], data,
        {title: {text: title, font: {size: 12}}, margin: {l: 50, r: 10, t: 30, b: 30}, showlegend: false, xaxis: xaxis({gridcolor: '#eee'}), yaxis: {range: yrange(t), gridcolor: '#eee'}, plot_bgcolor: '#fff', shapes: shapes},
        {displaylogo: false, responsive: true, displayModeBar: false}).then(done);
    });
    Promise.all(drawn).then(function () { section.setAttribute('data-rendered', '1'); });
  }
  var drawn = timeline();
  pr();
  var sections = Array.prototype.slice.call(root.querySelectorAll('section.episode'));
  sections.forEach(function (s) { s.drawEpisode = function () { episode(s); }; });
  return {sections: sections, timeline: drawn};
}
