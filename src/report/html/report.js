"use strict";
(function(){
var T0=performance.now();
window.addEventListener("error",function(e){document.body.setAttribute("data-errors",(document.body.getAttribute("data-errors")||"")+e.message+";");});
var D=JSON.parse(document.getElementById("mt-data").textContent);
var SVG="http://www.w3.org/2000/svg";
function $(id){return document.getElementById(id);}
function el(tag,text,cls){var e=document.createElement(tag);if(text!==undefined&&text!==null)e.textContent=String(text);if(cls)e.className=cls;return e;}
function sv(tag,attrs){var e=document.createElementNS(SVG,tag);for(var k in attrs)e.setAttribute(k,attrs[k]);return e;}
function fb(x){var u=["B","KiB","MiB","GiB","TiB"],i=0;while(x>=1024&&i<4){x/=1024;i++;}return (i?x.toFixed(x<10?2:x<100?1:0):Math.round(x))+" "+u[i];}
function fc(x){return Math.round(x).toLocaleString("en-US");}
function fns(x){return x<1e3?x+" ns":x<1e6?(x/1e3).toFixed(1)+" us":x<1e9?(x/1e6).toFixed(1)+" ms":(x/1e9).toFixed(2)+" s";}
var FMT={bytes:fb,count:fc,live:fb};

/* run and totals */
var r0=D.run[0]||{};
$("title").textContent="mtreport: "+(r0.exe||"?");
var lines=D.run.map(function(r){return "process "+r.pid+" on "+r.host+": "+r.exe+"\n  command: "+r.argv.join(" ")+"\n  started "+new Date(r.start_s*1000).toISOString()+", traced for "+fns(r.duration_ns)+", "+r.threads+" threads, "+(r.end||"no end record")+"; sampling "+r.policy+"; mtalloc "+r.version;});
$("run").textContent=lines.join("\n");
var t=D.totals;
[["total-bytes","bytes allocated",t.bytes,fb],["total-allocs","allocations",t.allocs,fc],["total-frees","frees",t.frees,fc],
 ["total-live-bytes","live at exit",t.live_bytes,fb],["total-live-objects","live objects at exit",t.live_objects,fc],
 ["total-xfrees","cross-thread frees",t.cross_thread_frees,fc],["total-samples","samples",t.samples,fc]].forEach(function(f){
	var d=el("div",null,"fig");var b=el("b",f[3](f[2]));b.id=f[0];b.setAttribute("data-value",f[2]);d.appendChild(b);d.appendChild(el("span",f[1]));$("figs").appendChild(d);});
if(!D.exact_weights)$("figs").appendChild(el("div","estimates from sampling ("+D.policy+")","note"));

/* flame graph */
var th=$("thread");
D.threads.forEach(function(x,i){var o=el("option",(x[2]||"?")+" ("+x[1]+")");o.value=i;th.appendChild(o);});
var CUT=0.001, ROW=17, zoom=null, root=null;
function build(metric,thr){
	var vi=metric==="bytes"?2:metric==="count"?3:4;
	var R={name:"all",v:0,k:{},p:null,d:0};
	D.cells.forEach(function(c){
		if(thr>=0&&c[1]!==thr)return;var v=c[vi];if(!v)return;
		var n=R;n.v+=v;var st=D.sites[c[0]][1];
		for(var i=0;i<st.length;i++){var f=D.frames[st[i]];var m=n.k[f];if(!m){m=n.k[f]={name:f,v:0,k:{},p:n,d:n.d+1};}m.v+=v;n=m;}
	});
	var cut=R.v*CUT,pruned=0;
	(function walk(n){var ks=Object.keys(n.k),other=0,on=0;n.c=[];
		ks.forEach(function(k){var m=n.k[k];if(m.v<cut){other+=m.v;on++;}else n.c.push(m);});
		if(other){n.c.push({name:"other ("+on+" frames below the cut-off)",v:other,k:{},c:[],p:n,d:n.d+1,other:true});pruned+=on;}
		n.c.sort(function(a,b){return b.v-a.v||(a.name<b.name?-1:1);});n.c.forEach(walk);})(R);
	R.pruned=pruned;R.cut=cut;return R;
}
function color(name){var h=0;for(var i=0;i<name.length;i++)h=(h*31+name.charCodeAt(i))|0;return "hsl("+(20+Math.abs(h)%40)+","+(60+Math.abs(h>>8)%30)+"%,"+(58+Math.abs(h>>16)%16)+"%)";}
function path(n){var s=[];for(;n;n=n.p)s.unshift(n.name);return s;}
function draw(){
	var svg=$("flame"),W=svg.clientWidth||1000,metric=$("metric").value,fmt=FMT[metric];
	while(svg.firstChild)svg.removeChild(svg.firstChild);
	var z=zoom||root,q=$("search").value,hits=0,maxd=0;
	var base=z.d,ancestors=[];for(var a=z.p;a;a=a.p)ancestors.unshift(a);
	function rect(n,x,w,d,alone){
		if(w<0.5)return;maxd=Math.max(maxd,d);
		var g=sv("g",{});var r=sv("rect",{x:x.toFixed(1),y:d*ROW,width:Math.max(w-0.5,0.5).toFixed(1),height:ROW-1,fill:n.other?"#ccc":color(n.name)});
		r.setAttribute("data-name",n.name);r.setAttribute("data-value",n.v);
		var hit=q&&n.name.indexOf(q)>=0;if(hit){r.setAttribute("class","hit");hits+=n.v;}
		var tt=sv("title",{});tt.textContent=n.name+"\n"+fmt(n.v)+" ("+(100*n.v/root.v).toFixed(2)+"% of all)";r.appendChild(tt);
		r.addEventListener("click",function(ev){ev.stopPropagation();zoom=n;draw();});
		r.addEventListener("mousemove",function(){$("finfo").textContent=path(n).join(" \u2192 ")+"\n"+fmt(n.v)+", "+(100*n.v/root.v).toFixed(2)+"% of all, "+(100*n.v/z.v).toFixed(2)+"% of the zoomed frame";});
		g.appendChild(r);
		if(w>40){var tx=sv("text",{x:x+3,y:d*ROW+12});var cs=Math.floor((w-6)/6.6);tx.textContent=n.name.length>cs?n.name.slice(0,Math.max(cs-1,0))+"\u2026":n.name;g.appendChild(tx);}
		svg.appendChild(g);
		if(alone)return;var cx=x;(n.c||[]).forEach(function(m){var cw=w*m.v/n.v;rect(m,cx,cw,d+1);cx+=cw;});
	}
	ancestors.forEach(function(a,i){rect(a,0,W,i,true);});
	var off=ancestors.length;
	if(z.v>0)rect(z,0,W,off);
	svg.setAttribute("height",(maxd+1)*ROW+2);
	svg.setAttribute("data-zoom",zoom?zoom.name:"");
	svg.setAttribute("data-total",root.v);
	$("smatch").textContent=q?("matched: "+fmt(hits)+" ("+(root.v?(100*hits/root.v).toFixed(2):0)+"%)"):"";
	$("fnote").textContent="total "+fmt(root.v)+"; frames under "+(CUT*100)+"% of the total ("+fmt(root.cut)+") are pruned into \"other\" nodes"+(root.pruned?" ("+root.pruned+" frames pruned)":"")+". Click a frame to zoom, an ancestor (top rows) to zoom out.";
}
function rebuild(){root=build($("metric").value,+th.value);zoom=null;draw();}
$("metric").addEventListener("change",rebuild);th.addEventListener("change",rebuild);
$("search").addEventListener("input",draw);$("reset").addEventListener("click",function(){zoom=null;draw();});
window.addEventListener("resize",draw);
rebuild();

/* timeline */
(function(){
	var svg=$("tl"),W=svg.clientWidth||1000,H=260,L=70,B=22;var tmax=1,ymax=1;
	D.run.forEach(function(r){r.tl.forEach(function(p){tmax=Math.max(tmax,p[0]);ymax=Math.max(ymax,p[1],p[2],p[3]);});r.marks.forEach(function(m){tmax=Math.max(tmax,m[0]);});});
	function X(t){return L+(W-L-10)*t/tmax;}function Y(y){return H-B-(H-B-10)*y/ymax;}
	svg.appendChild(sv("line",{x1:L,y1:H-B,x2:W-10,y2:H-B,stroke:"#999"}));svg.appendChild(sv("line",{x1:L,y1:10,x2:L,y2:H-B,stroke:"#999"}));
	for(var i=0;i<=4;i++){var y=ymax*i/4;var tx=sv("text",{x:2,y:Y(y)+3});tx.textContent=fb(y);svg.appendChild(tx);
		var tt=sv("text",{x:X(tmax*i/4)-10,y:H-6});tt.textContent=fns(Math.round(tmax*i/4));svg.appendChild(tt);}
	var series=[[1,"allocated","#d62"],[2,"resident","#26a"],[3,"sampled live","#2a4"]],n=0;
	D.run.forEach(function(r){series.forEach(function(s){if(!r.tl.length)return;
		var pts=r.tl.map(function(p){return X(p[0]).toFixed(1)+","+Y(p[s[0]]).toFixed(1);}).join(" ");
		var pl=sv("polyline",{points:pts,fill:"none",stroke:s[2],"stroke-width":1.5,"data-series":s[1]});var ti=sv("title",{});ti.textContent=s[1]+" (pid "+r.pid+")";pl.appendChild(ti);svg.appendChild(pl);n+=r.tl.length;});
		r.marks.forEach(function(m){var x=X(m[0]);svg.appendChild(sv("line",{x1:x,y1:10,x2:x,y2:H-B,stroke:"#888","stroke-dasharray":"3,3"}));
			var tx=sv("text",{x:x+2,y:20,"class":"mark"});tx.textContent=m[1];svg.appendChild(tx);});});
	series.forEach(function(s,i){var tx=sv("text",{x:L+10+i*110,y:H-B-6,fill:s[2]});tx.textContent="\u2014 "+s[1];svg.appendChild(tx);});
	$("tlnote").textContent=n?"":"no timeline points recorded";svg.setAttribute("data-points",n/3);
})();

/* tables */
function table(id,cols,rows){
	var tb=el("table"),hd=el("tr"),body=el("tbody"),dir={};tb.appendChild(el("thead")).appendChild(hd);tb.appendChild(body);
	var MAXROWS=500,note=el("div",null,"note");
	function fill(){while(body.firstChild)body.removeChild(body.firstChild);
		note.textContent=rows.length>MAXROWS?"showing the first "+MAXROWS+" of "+rows.length+" rows; sorting applies to all":"";
		rows.slice(0,MAXROWS).forEach(function(r){var tr=el("tr");cols.forEach(function(c,i){var td=el("td",c[2]?c[2](r[i]):r[i],c[1]?"":"l");td.setAttribute("data-value",r[i]);tr.appendChild(td);});body.appendChild(tr);});}
	cols.forEach(function(c,i){var h=el("th",c[0],c[1]?"":"l");h.addEventListener("click",function(){dir[i]=-(dir[i]||(c[1]?1:-1));var s=dir[i];
		rows.sort(function(a,b){return (a[i]<b[i]?-1:a[i]>b[i]?1:0)*s;});fill();});hd.appendChild(h);});
	fill();$(id).appendChild(tb);$(id).parentNode.insertBefore(note,$(id).nextSibling);
}
table("t-sites",[["site",0],["bytes",1,fb],["allocations",1,fc],["live bytes",1,fb],["live objects",1,fc],["frees",1,fc],["stack",0]],
	D.sites.map(function(s){return [s[0],s[2],s[3],s[4],s[5],s[6],s[1].map(function(f){return D.frames[f];}).join(" \u2192 ")];}).sort(function(a,b){return b[1]-a[1];}));
table("t-threads",[["pid",1],["tid",1],["name",0],["allocations",1,fc],["bytes",1,fb],["live bytes",1,fb],["peak live",1,fb]],D.threads.map(function(x){return x.slice();}));
table("t-sizes",[["class (bytes)",1,fc],["exact requests",1,fc],["sampled",1,fc]],D.sizes.map(function(x){return x.slice();}));
table("t-life",[["lifetime",0],["objects",1,fc]],D.life.map(function(x){return x.slice();}));

/* the cross-thread matrix as a heat map */
(function(){
	if(!D.xm.length){$("xm").appendChild(el("p","no object was freed by another thread","note"));return;}
	var ids=[];D.xm.forEach(function(c){if(ids.indexOf(c[0])<0)ids.push(c[0]);if(ids.indexOf(c[1])<0)ids.push(c[1]);});ids.sort(function(a,b){return a-b;});
	var max=0,cell={};D.xm.forEach(function(c){max=Math.max(max,c[2]);cell[c[0]+","+c[1]]=c;});
	function nm(i){var x=D.threads[i];return (x?x[2]||"?":"?")+" ("+(x?x[1]:"?")+")";}
	var tb=el("table",null,"hm"),hr=el("tr");hr.appendChild(el("th","from \\ to"));ids.forEach(function(i){hr.appendChild(el("th",nm(i)));});tb.appendChild(hr);
	ids.forEach(function(f){var tr=el("tr");tr.appendChild(el("th",nm(f),"l"));ids.forEach(function(to){var c=cell[f+","+to],td=el("td",c?fc(c[2]):"");
		if(c){td.style.background="rgba(214,60,30,"+(0.1+0.9*c[2]/max).toFixed(2)+")";td.title=nm(f)+" \u2192 "+nm(to)+": "+fc(c[2])+" objects, "+fb(c[3]);td.setAttribute("data-value",c[2]);}
		tr.appendChild(td);});tb.appendChild(tr);});
	$("xm").appendChild(tb);
})();

/* #selftest: the tests' check that a click on a frame zooms */
if(location.hash==="#selftest"){
	var rs=document.querySelectorAll("#flame rect"),target=null;
	for(var i=0;i<rs.length;i++){var y=+rs[i].getAttribute("y");if(y===ROW*2){target=rs[i];break;}}
	if(!target&&rs.length>1)target=rs[1];
	if(target){var want=target.getAttribute("data-name");target.dispatchEvent(new MouseEvent("click",{bubbles:true}));
		document.body.setAttribute("data-selftest",$("flame").getAttribute("data-zoom")===want?"zoomed:"+want:"no-zoom");}
	else document.body.setAttribute("data-selftest","no-frame");
}
document.body.setAttribute("data-render-ms",(performance.now()-T0).toFixed(1));
document.body.setAttribute("data-load-ms",performance.now().toFixed(1));
document.body.setAttribute("data-state","ready");
})();
